"""A threads=0 service script: runs in the daemon's main thread, then returns."""
import os
import sys
import time

print('service script running in pid %d' % os.getpid())
sys.stdout.flush()
time.sleep(1.5)
