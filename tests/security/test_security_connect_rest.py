"""Kafka Connect's REST API answers nobody without credentials (BasicAuthSecurityRestExtension):
a probe as the OS user `nobody` gets 401 on every kind of request, wrong credentials too,
while the operator's credentials (CONNECT_REST_*) list the connectors: the positive control."""

from __future__ import annotations

import httpx

from config.settings import StackSettings
from tests.security.as_nobody import probe_folder, run_as_nobody

# argv[1] = base URL; print the status of each request without credentials / with wrong ones
PROBE = """
import base64, json, sys, urllib.error, urllib.request
base = sys.argv[1]
requests = [("GET", "/connectors", None), ("GET", "/connector-plugins", None),
            ("PUT", "/connectors/car-price-source/pause", None),
            ("POST", "/connectors", {"name": "probe", "config": {"connector.class": "x"}}),
            ("DELETE", "/connectors/car-price-predictions-sink", None)]
answers = []
for auth in (None, "Basic " + base64.b64encode(b"car-operator:wrong").decode()):
    for method, path, body in requests:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        if auth:
            request.add_header("Authorization", auth)
        try:
            status = urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as exc:
            status = exc.code
        answers.append([method, path, bool(auth), status])
print(json.dumps({"answers": answers}))
"""


def test_connect_rest_without_credentials_answers_401(stack_ready: StackSettings) -> None:
    with probe_folder() as folder:
        answer = run_as_nobody(folder, PROBE, stack_ready.connect.url)
    statuses = {status for *_, status in answer["answers"]}
    assert statuses == {401}, answer["answers"]

    connect = stack_ready.connect
    listed = httpx.get(f"{connect.url}/connectors", auth=connect.rest_auth, timeout=10)
    assert listed.status_code == 200 and "car-price-source" in listed.json(), listed.text
    states = httpx.get(
        f"{connect.url}/connectors/car-price-source/status", auth=connect.rest_auth, timeout=10
    )
    assert states.json()["connector"]["state"] == "RUNNING", "the probe paused nothing"
