from parityspec.cli_supervisor import main

main()
