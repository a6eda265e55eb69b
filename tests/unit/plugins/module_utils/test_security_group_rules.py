"""The security group's rules as sets: what converging adds and removes."""

from __future__ import annotations

from ansible_collections.toil.cluster.plugins.module_utils.security_group import current_rules, describe_rules, desired_rules


def test_toil_rules_from_ssh_cidrs():
    assert desired_rules("sg-1", ["0.0.0.0/0", "::/0"]) == {
        ("tcp", 22, 22, "cidr", "0.0.0.0/0"),
        ("tcp", 22, 22, "cidr6", "::/0"),
        ("tcp", 0, 65535, "group", "sg-1"),
        ("udp", 0, 65535, "group", "sg-1"),
    }


def test_current_rules_read_every_source_of_a_permission():
    group = {
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "0.0.0.0/0"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            },
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-1"}]},
        ]
    }
    assert current_rules(group) == {
        ("tcp", 22, 22, "cidr", "10.0.0.0/8"),
        ("tcp", 22, 22, "cidr", "0.0.0.0/0"),
        ("tcp", 22, 22, "cidr6", "::/0"),
        ("-1", -1, -1, "group", "sg-1"),
    }


def test_rules_read_back_equal_the_desired_ones():
    # What AWS returns after authorising Toil's rules must compare equal, or every run would "change".
    group = {
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": "123456789012"}]},
            {"IpProtocol": "udp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": "sg-1"}]},
        ]
    }
    assert current_rules(group) == desired_rules("sg-1", ["0.0.0.0/0", "::/0"])


def test_describe_rules_names_self():
    assert describe_rules(desired_rules("sg-1", ["0.0.0.0/0"]), "sg-1") == ["tcp 0-65535 from self", "tcp 22 from 0.0.0.0/0", "udp 0-65535 from self"]
