from libs.runtime.host import run
from services.delivery.app import SPEC

run(SPEC)
