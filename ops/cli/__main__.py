"""`python -m ops.cli`: how background processes start the CLI with this interpreter."""

from ops.cli import main

main()
