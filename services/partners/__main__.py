"""``python -m services.partners``: run the partners service (port 8101)."""

from libs.runtime.host import run
from services.partners.app import SPEC

run(SPEC)
