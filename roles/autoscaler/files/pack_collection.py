# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Pack the controller's copy of toil.cluster into a tarball that ansible-galaxy installs on the leader.

Usage: pack_collection.py COLLECTION_ROOT DEST_DIR; prints the tarball's path. Run by the autoscaler role on the
controller with the Python that runs ansible-playbook, so the leader gets the version the controller runs.

- A checkout (galaxy.yml) is built with ``ansible-galaxy collection build`` of that Python's ansible-core.
- An installed copy (MANIFEST.json, as ``ansible-galaxy collection install`` leaves it) is packed as the artifact it
  came from: MANIFEST.json, FILES.json and the files FILES.json lists, which ansible-galaxy checks against their
  sha256 when it installs them (so a copy changed since it was installed is refused on the leader). Whatever
  else is in the directory (__pycache__) is left out.
"""

import json
import os
import subprocess
import sys
import tarfile


def build_checkout(root, dest):
    command = [sys.executable, "-m", "ansible.cli.galaxy", "collection", "build", root, "--output-path", dest, "--force"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    (name,) = [n for n in os.listdir(dest) if n.endswith(".tar.gz")]
    return os.path.join(dest, name)


def pack_installed(root, dest):
    with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as f:
        info = json.load(f)["collection_info"]
    with open(os.path.join(root, "FILES.json"), encoding="utf-8") as f:
        files = json.load(f)["files"]
    tarball = os.path.join(dest, f"{info['namespace']}-{info['name']}-{info['version']}.tar.gz")
    with tarfile.open(tarball, "w:gz") as tar:
        for name in ["MANIFEST.json", "FILES.json"] + [entry["name"] for entry in files if entry["name"] != "."]:
            tar.add(os.path.join(root, name), arcname=name, recursive=False)
    return tarball


def main(argv):
    root, dest = argv[1], argv[2]
    if os.path.exists(os.path.join(root, "galaxy.yml")):
        print(build_checkout(root, dest))
    elif os.path.exists(os.path.join(root, "MANIFEST.json")):
        print(pack_installed(root, dest))
    else:
        sys.exit(f"{root} holds neither galaxy.yml (a checkout) nor MANIFEST.json (an installed collection)")


if __name__ == "__main__":
    main(sys.argv)
