from libs.runtime.host import run
from services.credit.app import SPEC

run(SPEC)
