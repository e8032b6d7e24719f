"""``python -m o2c ...`` is ``o2c ...`` (the image's entry point is ``python -m``)."""

from o2c.cli import app

app(prog_name="o2c")
