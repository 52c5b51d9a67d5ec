import json

import structlog

from leadbot.logs import configure_logging, get_logger


def test_logs_are_json_lines_without_phones_or_secrets(capsys) -> None:
    configure_logging("json", "info")
    get_logger("t").info("lead.received", phone="13812345678", note="call 13812345678 now",
                         access_token="SECRET-TOKEN-VALUE", secret="abcdefgh")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "lead.received"
    assert "13812345678" not in line and "138****5678" in line
    assert "SECRET-TOKEN-VALUE" not in line and "abcdefgh" not in line
    structlog.reset_defaults()


SECRETS = dict(
    wecom=dict(corp_id="wwlogcorp", token="WeComTokenXyZ123", secret="wecom-app-secret-9f8e7d",
               encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", api_base="http://127.0.0.1:9",
               manager_robot_key="robot-key-5a5a5a5a"),
    dingtalk=dict(app_key="dingappkey", app_secret="dingtalk-app-secret-77", token="DingCallbackTok",
                  aes_key="Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7", card_callback_secret="card-cb-secret-31",
                  manager_robot_webhook="http://127.0.0.1:9/robot/send?access_token=robot-access-tok-42",
                  manager_robot_secret="SECrobot-sign-secret-1", api_base="http://127.0.0.1:9",
                  oapi_base="http://127.0.0.1:9"),
    server={"secret_key": "action-token-signing-key-0123456789"},
    crm_bridge={"api_tokens": ["crm-bridge-token-555"]},
)


async def test_an_unhandled_error_logs_no_secret_no_phone_and_no_locals(aiohttp_client, engine, clock,
                                                                         capsys) -> None:
    """An unhandled error inside a route whose frames hold the whole Settings and a customer's
    phone: the log line has a plain traceback, and no configured secret or full phone anywhere."""
    from bot.app import create_app
    from bot.context import CTX
    from leadbot.logs import secrets_of
    from tests.conftest import AUTH, INTAKE_TOKEN, make_settings

    cfg = make_settings(**SECRETS)
    secrets = secrets_of(cfg)
    assert INTAKE_TOKEN in secrets and "robot-access-tok-42" in " ".join(secrets)
    configure_logging("json", "info", secrets=secrets)
    app = create_app(cfg, clock=clock, engine=engine, start_workers=False)
    ctx = app[CTX]
    phone = "13912345678"

    async def broken_create_lead(lead):  # its locals (and its caller's) hold settings and the phone
        settings = ctx.settings
        raise RuntimeError(f"cannot store {lead.fields['phone']} with {settings.wecom.secret} "
                           f"{settings.server.secret_key} {settings.dingtalk.manager_robot_webhook}")

    ctx.store.create_lead = broken_create_lead
    try:
        client = await aiohttp_client(app)
        resp = await client.post("/api/v1/leads", json={"name": "张三", "phone": phone}, headers=AUTH)
        assert resp.status == 500
        log = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    record = next(json.loads(line) for line in log.splitlines() if '"http.unhandled"' in line)
    assert "RuntimeError: cannot store 139****5678" in record["exception"]
    assert "Traceback (most recent call last)" in record["exception"]
    for secret in secrets:
        assert secret not in log, f"secret {secret[:3]}… in the log"
    for section in SECRETS.values():
        for value in section.values():
            for v in (value if isinstance(value, list) else [value]):
                if len(str(v)) >= 8 and not str(v).startswith("http"):
                    assert str(v) not in log
    assert phone not in log
    assert "Settings(" not in log and "frames" not in record
