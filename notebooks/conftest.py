"""nbval runs the notebooks here: long cells (training in 07) take their short path, as in the
committed outputs (scripts/regenerate_notebooks.py sets the same variable)."""
import os

os.environ.setdefault("SDCOURSE_QUICK", "1")
