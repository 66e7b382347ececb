# Runs under Python 2.7 (.venv-autobahn/bin/python), not under the project's Python 3.
"""
Autobahn's fuzzing server (``wstest -m fuzzingserver``) on 127.0.0.1 and a free port.

``wstest`` itself listens on the port written in the spec's URL and on every interface;
the tests need a port nobody else holds and loopback only. This starts the same server
factory on port 0 of 127.0.0.1 and prints ``LISTENING <port>`` once it accepts clients.

Usage: ``.venv-autobahn/bin/python fuzzingserver.py SPEC.json``
"""

import json
import sys

from autobahntestsuite import choosereactor  # noqa: F401  (installs the epoll reactor, as wstest does)
from autobahntestsuite.fuzzing import FuzzingServerFactory
from twisted.internet import reactor


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    factory = FuzzingServerFactory(spec)
    listener = reactor.listenTCP(0, factory, interface="127.0.0.1")
    port = listener.getHost().port
    # The opening handshake checks the Host header against the port the factory thinks it has.
    factory.port = factory.externalPort = port
    sys.stdout.write("LISTENING " + str(port) + "\n")
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
