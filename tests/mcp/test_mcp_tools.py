import json
from fastapi.testclient import TestClient
from grantly.app import create_app
from tests.conftest import authorize_params, callback_params, exchange, hidden_fields, sign_in

MCP_URI = "http://127.0.0.1:8000/mcp"
H = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

def test_exp(world, clock):
    with TestClient(create_app(world.settings, clock=clock), base_url="http://127.0.0.1:8000", follow_redirects=False, client=("127.0.0.1", 50000)) as http:
        sign_in(http, world.employee)
        page = http.get("/oauth/authorize", params=authorize_params(world.app, scope="read", resource=MCP_URI))
        r = http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
        code = callback_params(r)["code"]
        t = exchange(http, world.app, code, resource=MCP_URI)
        tok = t.json()["access_token"]
        h = {**H, "Authorization": f"Bearer {tok}"}
        r = http.post("/mcp", headers=h, json={"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
        print(r.status_code, r.headers, r.text)
        for name, args in [("get_employee", {"employee_id": 2**31}), ("get_employee", {"employee_id": 2**63}), ("get_employee", {"employee_id": 0}),
                           ("list_employees", {"page": 10**17}), ("list_employees", {"page": 2**40}), ("list_employees", {"search": "a\x00b"}), ("list_employees", {"search": "%"}), ("list_employees", {"search": "   "}),("list_employees", {"limit": 0}),
                           ("update_employee", {"employee_id": world.employee.id, "first_name": "X\x00"})]:
            r = http.post("/mcp", headers=h, json={"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":name,"arguments":args}})
            print(name, args, r.status_code, json.dumps(r.json())[:600])
