"""Printed and logged configs never show secrets."""

from omegaconf import OmegaConf

from leia.records import REDACTED, redact, redacted_yaml


def test_secret_keys_and_the_environment_secret_are_redacted(monkeypatch):
    monkeypatch.setenv("LEIA_SECRET", "s3cr3t-value")
    cfg = {"key": {"seed": 0, "secret_file": "/keys/owner.secret", "secret": "x"},
           "logger": {"api_key": "abc", "note": "uses s3cr3t-value inside"}, "list": ["s3cr3t-value", 1]}
    out = redact(cfg)
    assert out["key"] == {"seed": 0, "secret_file": "/keys/owner.secret", "secret": REDACTED}
    assert out["logger"] == {"api_key": REDACTED, "note": REDACTED}
    assert out["list"] == [REDACTED, 1]
    text = redacted_yaml(OmegaConf.create(cfg))
    assert "s3cr3t-value" not in text and "abc" not in text and "/keys/owner.secret" in text


def test_the_key_group_takes_only_key_sources_on_the_command_line():
    from leia.argv_guard import secret_override

    for arg in ("+key={secret:x}", "key={seed:1,secret:x}", "+key.secret_hex=x", "+key.passphrase=x", "key=abcdef",
                "+key.secret=x", "+logger.api_key=x"):
        assert secret_override([arg]) is not None, arg
    for arg in ("key=env", "key=secret_file", "key.secret_file=/p", "key.seed=3", "+key={seed: 1}", "key.key_file=/k"):
        assert secret_override([arg]) is None, arg
