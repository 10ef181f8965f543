"""`python -m sdcourse.train ...`: see sdcourse.train.cli."""
from .cli import main

main()
