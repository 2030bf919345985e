from hm.cli import entry

entry()
