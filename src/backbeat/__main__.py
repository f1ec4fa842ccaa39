"""``python -m backbeat``: the command line (see ``backbeat.commands``)."""

from backbeat.commands import main

main()
