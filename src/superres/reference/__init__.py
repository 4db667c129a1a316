"""Published results of the SR literature, kept as data (CSV) beside this file."""
