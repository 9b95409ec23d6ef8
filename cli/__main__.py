"""`python -m cli …` is the same as `gateway …`."""

from cli.app import main

main()
