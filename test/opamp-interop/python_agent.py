"""A third-party OpAMP agent for test/fleet-interop.test.ts: the OpenTelemetry Python OpAMP client from PyPI
(opentelemetry-opamp-client) as an OTel Python distribution would use it. It registers with the given server,
takes each remote configuration (JSON), reports it applied and as its effective configuration, and appends each
one it applied to a JSON-lines file for the test to read. Runs until SIGTERM, then says goodbye.

Usage: python python_agent.py ENDPOINT SERVICE_NAME OUTPUT_FILE [HEARTBEAT_SECONDS]
"""

import json
import signal
import sys
import threading

from opentelemetry._opamp.agent import OpAMPAgent
from opentelemetry._opamp.callbacks import OpAMPCallbacks
from opentelemetry._opamp.client import OpAMPClient
from opentelemetry._opamp.proto import opamp_pb2


class ApplyingCallbacks(OpAMPCallbacks):
    def __init__(self, output):
        self.output = output

    def on_message(self, agent, client, message):
        remote = message.remote_config
        if remote is None:
            return
        configs = dict(client.decode_remote_config(remote))
        client.update_effective_config(configs, "application/json")
        client.update_remote_config_status(
            remote_config_hash=remote.config_hash,
            status=opamp_pb2.RemoteConfigStatuses_APPLIED,
        )
        agent.send(client.build_full_state_message())
        with open(self.output, "a", encoding="utf-8") as out:
            out.write(json.dumps({"hash": remote.config_hash.hex(), "configs": configs}) + "\n")


def main():
    endpoint, service, output = sys.argv[1:4]
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    client = OpAMPClient(
        endpoint=endpoint,
        agent_identifying_attributes={"service.name": service, "service.version": "1.2.3"},
        agent_non_identifying_attributes={"deployment.environment.name": "test", "host.arch": "amd64"},
    )
    agent = OpAMPAgent(interval=interval, callbacks=ApplyingCallbacks(output), client=client)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    agent.start()
    print("started", flush=True)
    stopped.wait()
    agent.stop()


if __name__ == "__main__":
    main()
