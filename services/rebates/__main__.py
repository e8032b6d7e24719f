from libs.runtime.host import run
from services.rebates.app import SPEC

run(SPEC)
