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
        print(page.status_code)
        r = http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
        code = callback_params(r)["code"]
        t = exchange(http, world.app, code, resource=MCP_URI)
        print(t.status_code, t.json())
        tok = t.json()["access_token"]
        h = {**H, "Authorization": f"Bearer {tok}"}
        r = http.post("/mcp", headers=h, json={"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
        print(r.status_code, r.headers, r.text)
        r = http.post("/mcp", headers=h, json={"jsonrpc":"2.0","method":"notifications/initialized"})
        print(r.status_code, r.headers, r.text)
        r = http.post("/mcp", headers=h, json={"jsonrpc":"2.0","id":2,"method":"tools/list"})
        print(r.status_code, json.dumps(r.json(), indent=1)[:3000])
        for name, args in [("whoami", {}), ("list_employees", {}), ("get_employee", {"employee_id": world.other_admin.id}), ("update_employee", {"employee_id": world.employee.id, "first_name": "X"})]:
            r = http.post("/mcp", headers=h, json={"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":name,"arguments":args}})
            print(name, r.status_code, json.dumps(r.json(), indent=1)[:3000])
        r = http.post("/mcp", headers=H, json={"jsonrpc":"2.0","id":2,"method":"tools/list"})
        print(r.status_code, r.headers, r.text)
        r = http.post("/mcp", headers={**H, "Authorization": "Bearer nope"}, json={"jsonrpc":"2.0","id":2,"method":"tools/list"})
        print(r.status_code, r.headers, r.text)
