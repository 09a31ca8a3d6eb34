from parityspec.cli import main

main()
