"""The ``mvcodec`` command line: ``main(argv) -> int``, one module per subcommand."""
