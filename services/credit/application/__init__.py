"""Credit commands and reactions: load the account, decide, append with its version, update documents."""
