"""Offline stand-in for ansible-test's get-pip bootstrap script.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com, which is unreachable
here; it uses a cached copy when one exists, so tools/setup-ansible-test.sh puts this file
there. It bootstraps the pip bundled with Python (ensurepip), then installs the packages
ansible-test asked for from the configured index.
"""

import ensurepip
import os
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null; pip must read /etc/pip.conf (index, CA).
os.environ.pop("PIP_CONFIG_FILE", None)
rc = subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
if rc == 0 and "--no-setuptools" in sys.argv:
    rc = subprocess.call([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "setuptools"])
sys.exit(rc)
