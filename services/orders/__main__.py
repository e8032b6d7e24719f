from libs.runtime.host import run
from services.orders.app import SPEC

run(SPEC)
