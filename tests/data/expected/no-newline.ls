/a
/b
