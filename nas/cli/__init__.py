"""The `nas` command line: the parser, the commands, what they show while work runs."""
