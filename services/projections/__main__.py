from libs.runtime.host import run
from services.projections.app import SPEC

run(SPEC)
