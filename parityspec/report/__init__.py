"""One result dict, built once; every report format renders that same dict."""
