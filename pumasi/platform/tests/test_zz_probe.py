import time, requests
from pumasi.platform.services import TOKEN_SCOPES, create_api_token

def test_probe(pumasi_server, community):
    token, secret = create_api_token(user=community.organiser, name="p", scopes=list(TOKEN_SCOPES))
    server = pumasi_server({"PUMASI_LOG_LEVEL": "ERROR"})
    h = {"Authorization": f"Bearer {secret}"}
    for q in ["limit=&limit=1.7976931348623155e%2B308", "limit=5", "limit=1e308"]:
        t = time.monotonic()
        try:
            r = requests.get(f"{server.url}/api/v1/communities?{q}", headers=h, timeout=20)
            print(q, r.status_code, r.text[:200], round(time.monotonic() - t, 2))
        except Exception as e:
            print(q, "ERR", e, round(time.monotonic() - t, 2))
