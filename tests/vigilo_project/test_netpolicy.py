"""The network policy as a pure decision: patterns, CIDRs, ports, IPv6, and the addresses nothing admits by
default (link-local, cloud metadata)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from vigilo_project.env import env_parsed
from vigilo_project.netpolicy import (
    AllOf,
    PolicyInvalid,
    address_kind,
    policy_configured,
    policy_parse,
    policy_resolve,
    policy_setting,
)

SOURCE = "VIGILO_NETWORK_POLICY"
LISTED = policy_parse(
    {
        "allow": [
            "api.openai.com:443",
            "*.example.com",
            "internal.example",
            "10.0.0.0/8",
            "127.0.0.1:8080",
            "[::1]:9000",
            "fd00:1::/32",
        ]
    },
    source=SOURCE,
)


def decide(policy, host, port, *addresses):
    return policy.decide(host, port, [ip_address(a) for a in addresses])


@pytest.mark.parametrize(
    ("host", "port", "addresses"),
    [
        ("api.openai.com", 443, ["104.18.7.192"]),
        ("API.OpenAI.com.", 443, ["104.18.7.192"]),  # names compare without case and trailing dot
        ("eu.example.com", 80, ["93.184.216.34"]),
        ("a.b.example.com", 8443, ["93.184.216.34", "2606:2800:220:1::1"]),
        ("internal.example", 80, ["192.168.1.7"]),  # an exact name is admitted wherever it resolves
        ("anything.corp", 8000, ["10.1.2.3"]),  # a CIDR admits what resolves into it
        ("eu.example.com", 443, ["10.9.9.9"]),  # the CIDR admits the private address the wildcard alone would not
        ("127.0.0.1", 8080, []),
        ("localhost", 8080, ["127.0.0.1"]),
        ("::1", 9000, []),
        ("svc.corp", 443, ["fd00:1:2::3"]),
    ],
)
def test_an_allow_list_admits_names_wildcards_addresses_and_cidrs(host, port, addresses):
    assert decide(LISTED, host, port, *addresses) is None


@pytest.mark.parametrize(
    ("host", "port", "addresses", "reason"),
    [
        (
            "evil.com",
            443,
            ["1.2.3.4"],
            "network policy refused 1.2.3.4 (public address of evil.com): not allowed by VIGILO_NETWORK_POLICY",
        ),
        (
            "example.com",  # *.example.com is the names under it, not the name itself
            443,
            ["93.184.216.34"],
            "network policy refused 93.184.216.34 (public address of example.com): "
            "not allowed by VIGILO_NETWORK_POLICY",
        ),
        (
            "api.openai.com",
            80,
            ["104.18.7.192"],
            "network policy refused 104.18.7.192 (public address of api.openai.com): VIGILO_NETWORK_POLICY allows it "
            "on port 443 only",
        ),
        (
            "rebound.example.com",
            443,
            ["93.184.216.34", "192.168.1.7"],  # every address must pass, not just the first
            "network policy refused 192.168.1.7 (private address of rebound.example.com): *.example.com admits "
            "public addresses only; add an IP or CIDR entry for it (VIGILO_NETWORK_POLICY)",
        ),
        (
            "localhost",
            8080,
            ["::1"],
            "network policy refused ::1 (loopback address of localhost): VIGILO_NETWORK_POLICY allows it on port "
            "9000 only",
        ),
        (
            "127.0.0.1",
            8081,
            [],
            "network policy refused 127.0.0.1 (loopback address): VIGILO_NETWORK_POLICY allows it on port 8080 only",
        ),
        (
            "::1",
            8080,
            [],
            "network policy refused ::1 (loopback address): VIGILO_NETWORK_POLICY allows it on port 9000 only",
        ),
    ],
)
def test_an_allow_list_refuses_the_rest_saying_why(host, port, addresses, reason):
    assert decide(LISTED, host, port, *addresses) == reason


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),  # IPv4-mapped: the IPv4 address it reaches
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("100.64.0.1", "private"),
        ("0.0.0.0", "private"),
        ("fd12::1", "private"),
        ("8.8.8.8", "public"),
        ("2001:4860:4860::8888", "public"),
    ],
)
def test_addresses_are_classified(address, kind):
    assert address_kind(ip_address(address)) == kind


@pytest.mark.parametrize(
    "policy",
    [
        policy_parse("allow-all", source=SOURCE),
        policy_parse({"allow": ["0.0.0.0/0", "::/0", "*.internal"]}, source=SOURCE),
        policy_configured(["http://169.254.169.254/latest", "http://[fe80::1]:8080/"], source="the default"),
    ],
)
@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("169.254.169.254", None, "(cloud metadata address): cloud metadata addresses are refused unless an entry"),
        ("fe80::1", None, "(link-local address): link-local addresses are refused unless an IP or CIDR entry"),
        ("box.internal", "169.254.169.254", "(cloud metadata address of box.internal)"),
        ("box.internal", "fd00:ec2::254", "(cloud metadata address of box.internal)"),
        ("box.internal", "169.254.3.4", "(link-local address of box.internal)"),
        ("metadata.google.internal", "169.254.169.254", "refused metadata.google.internal (a cloud metadata name)"),
    ],
)
def test_link_local_and_metadata_are_refused_unless_named(policy, host, address, reason):
    port = 8080 if host == "fe80::1" else 80
    refusal = decide(policy, host, port, *([address] if address else []))
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    ("entries", "host", "address"),
    [
        (["169.254.169.254"], "169.254.169.254", None),
        (["169.254.169.254:80"], "box.internal", "169.254.169.254"),
        (["[fd00:ec2::254]:80"], "fd00:ec2::254", None),
        (["metadata.google.internal"], "metadata.google.internal", "169.254.169.254"),
        (["169.254.0.0/16"], "169.254.3.4", None),
        (["fe80::/10"], "printer.lan", "fe80::1%eth0"),
    ],
)
def test_an_entry_naming_them_admits_link_local_and_metadata(entries, host, address):
    policy = policy_parse({"allow": entries}, source=SOURCE)
    assert decide(policy, host, 80, *([address] if address else [])) is None


def test_a_link_local_range_does_not_name_the_metadata_address_in_it():
    policy = policy_parse({"allow": ["169.254.0.0/16"]}, source=SOURCE)
    assert "cloud metadata address" in decide(policy, "169.254.169.254", 80)


def test_deny_all_refuses_before_any_lookup():
    policy = policy_parse("deny-all", source=SOURCE)
    expected = "network policy refused api.openai.com:443: VIGILO_NETWORK_POLICY refuses every call (deny-all)"
    assert policy.refusal_before_dns("api.openai.com", 443) == expected
    assert decide(policy, "api.openai.com", 443, "104.18.7.192") == expected
    assert policy.refusal_before_dns("::1", 80).startswith("network policy refused [::1]:80:")


def test_a_names_only_list_refuses_other_names_before_any_lookup():
    policy = policy_parse({"allow": ["api.openai.com"]}, source=SOURCE)
    assert policy.refusal_before_dns("evil.com", 443) == (
        "network policy refused evil.com: not allowed by VIGILO_NETWORK_POLICY"
    )
    assert policy.refusal_before_dns("api.openai.com", 443) is None
    with_cidr = policy_parse({"allow": ["api.openai.com", "10.0.0.0/8"]}, source=SOURCE)
    assert with_cidr.refusal_before_dns("evil.com", 443) is None  # it might resolve into 10/8: decided after


def test_allow_all_admits_private_and_loopback_addresses():
    policy = policy_parse("allow-all", source=SOURCE)
    assert decide(policy, "agent.corp", 443, "10.1.2.3", "fd12::1") is None
    assert decide(policy, "127.0.0.1", 8080) is None


def test_the_default_admits_exactly_the_configured_hosts_and_ports():
    policy = policy_resolve(
        "default",
        source=SOURCE,
        configured=["https://api.openai.com/v1", "http://127.0.0.1:8080/v1", "http://agent.corp/run", "http://[::1]/"],
    )
    assert decide(policy, "api.openai.com", 443, "104.18.7.192") is None
    assert decide(policy, "127.0.0.1", 8080) is None
    assert decide(policy, "agent.corp", 80, "10.1.2.3") is None  # the configured target, wherever it resolves
    assert decide(policy, "::1", 80) is None
    assert decide(policy, "api.openai.com", 80, "104.18.7.192").endswith(
        "VIGILO_NETWORK_POLICY=default allows it on port 443 only"
    )
    assert decide(policy, "127.0.0.1", 8081).endswith("allows it on port 8080 only")
    assert decide(policy, "other.com", 443, "1.2.3.4") == (
        "network policy refused 1.2.3.4 (public address of other.com): not allowed by VIGILO_NETWORK_POLICY=default"
    )
    assert "cloud metadata address of agent.corp" in decide(policy, "agent.corp", 80, "169.254.169.254")


def test_every_policy_of_a_chain_must_admit_the_call():
    workers = policy_resolve("default", source=SOURCE, configured=["http://agent.corp:8080/run"])
    target = policy_parse({"allow": ["10.20.0.0/16"]}, source="target.network")
    both = AllOf((workers, target))
    assert decide(both, "agent.corp", 8080, "10.20.1.5") is None
    assert decide(both, "agent.corp", 8080, "10.30.1.5") == (
        "network policy refused 10.30.1.5 (private address of agent.corp): not allowed by target.network"
    )
    assert both.refusal_before_dns("other.corp", 8080).endswith("not allowed by VIGILO_NETWORK_POLICY=default")


def test_entries_are_kept_in_canonical_form():
    policy = policy_parse(
        {"allow": ["API.OpenAI.com.:443", "*.Example.COM", "10.0.0.0/8:8443", "[::1]:9000", "fe80::/10", "::1"]},
        source=SOURCE,
    )
    assert policy.as_value() == {
        "allow": ["api.openai.com:443", "*.example.com", "10.0.0.0/8:8443", "[::1]:9000", "fe80::/10", "::1"]
    }
    assert policy_parse(policy.as_value(), source=SOURCE) == policy


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ("open", [("", 'must be "allow-all", "deny-all" or {"allow": [host, IP or CIDR, ...]}')]),
        (None, [("", 'must be "allow-all", "deny-all" or {"allow": [host, IP or CIDR, ...]}')]),
        (
            {"allow": "api.openai.com"},
            [(".allow", "required: a list of at most 1000 host names, IPs or CIDRs, each optionally :port")],
        ),
        ({"allow": [], "deny": []}, [(".deny", "unknown key (only 'allow')")]),
        ({"allow": ["10.0.0.1/8"]}, [(".allow[0]", "'10.0.0.1/8' is not an IP address or CIDR (host bits set)")]),
        ({"allow": ["ok.com", "x:0"]}, [(".allow[1]", "'x:0': the port must be a number from 1 to 65535")]),
        ({"allow": ["x:http"]}, [(".allow[0]", "'x:http': the port must be a number from 1 to 65535")]),
        ({"allow": ["[::1"]}, [(".allow[0]", "'[::1': write an IPv6 address with a port as [address]:port")]),
        ({"allow": ["*"]}, [(".allow[0]", "'*' is not a host name, a *.domain wildcard, an IP address or a CIDR")]),
        (
            {"allow": ["a.*.com"]},
            [(".allow[0]", "'a.*.com' is not a host name, a *.domain wildcard, an IP address or a CIDR")],
        ),
        ({"allow": ["300.1.1.1"]}, [(".allow[0]", "'300.1.1.1' is not an IP address or CIDR")]),
        (
            {"allow": [7]},
            [(".allow[0]", "must be a host name, IP address or CIDR, optionally with :port (printable ASCII)")],
        ),
        (
            {"allow": ["a b"]},
            [(".allow[0]", "must be a host name, IP address or CIDR, optionally with :port (printable ASCII)")],
        ),
    ],
)
def test_a_bad_policy_names_every_wrong_part(value, problems):
    with pytest.raises(PolicyInvalid) as refused:
        policy_parse(value, source="target.network")
    assert refused.value.problems == problems
    assert str(refused.value).startswith(f"target.network{problems[0][0]}: ")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", "default"),
        ("default", "default"),
        (" allow-all ", "allow-all"),
        ("deny-all", "deny-all"),
        ('{"allow": ["API.openai.com:443", "10.0.0.0/8"]}', {"allow": ["api.openai.com:443", "10.0.0.0/8"]}),
    ],
)
def test_the_setting_reads_a_keyword_or_a_json_object(text, value):
    assert policy_setting(text, source=SOURCE) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allow", 'VIGILO_NETWORK_POLICY=\'allow\': must be "default", "allow-all", "deny-all" or a JSON object'),
        ('{"allow": [}', "VIGILO_NETWORK_POLICY='{\"allow\": [}': not valid JSON: "),
        ('{"allow": ["x:0"]}', "VIGILO_NETWORK_POLICY.allow[0]: 'x:0': the port must be a number from 1 to 65535"),
    ],
)
def test_a_bad_setting_is_a_start_up_error_naming_it(monkeypatch, text, message):
    monkeypatch.setenv("VIGILO_NETWORK_POLICY", text)
    with pytest.raises(ImproperlyConfigured) as refused:
        env_parsed("VIGILO_NETWORK_POLICY", "default", lambda raw: policy_setting(raw, source=SOURCE))
    assert message in str(refused.value)


@given(st.ip_addresses())
def test_allow_all_refuses_exactly_link_local_and_metadata(address):
    refusal = policy_parse("allow-all", source=SOURCE).decide(str(address), 80, [])
    assert (refusal is not None) == (address_kind(address) in ("link-local", "cloud metadata"))
