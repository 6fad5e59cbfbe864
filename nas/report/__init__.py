"""What a study and its runs look like to a reader: the terminal table, the results document and
its plots."""
