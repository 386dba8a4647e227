using System.Net;
using PgState.Modules.Hba;

namespace PgState.Tests.Unit;

/// <summary>Live sessions against the live and the new pg_hba.conf, with the matcher hba test uses.</summary>
public class HbaSessionsTests
{
    private static LiveSessions Sessions(string user, string database, string? address, int count = 1, bool ssl = false) =>
        new(new HbaConnection(address is null ? "local" : "host", database, user, address is null ? null : IPAddress.Parse(address), ssl, Roles: new HashSet<string> { user }), count);

    private static HbaRule Rule(string line) => HbaFile.Parse(line + "\n").Rules.Single().Rule;

    private const string Live = "local all postgres peer\nhost all all 10.0.0.0/8 scram-sha-256\nhost all all 192.168.0.0/16 md5\n";

    [Fact]
    public void A_session_the_new_rule_rejects_is_named_with_the_rule_and_what_admits_it_today()
    {
        var next = "local all postgres peer\nhost orders app 10.0.1.0/24 reject\nhost all all 10.0.0.0/8 scram-sha-256\n";
        var managed = HbaFile.Parse(next).Rules.Select(r => r.Rule).ToList();
        var impacts = HbaSessions.Impacts(HbaFile.Parse(Live).Rules, HbaFile.Parse(next).Rules, [Sessions("app", "orders", "10.0.1.5", 2), Sessions("app", "shop", "10.0.1.5")], managed);
        var impact = Assert.Single(impacts);
        Assert.Equal(SessionImpactKind.Rejected, impact.Kind);
        Assert.Equal("hba.rule[1]", impact.Address);
        Assert.Equal("2 sessions of app@10.0.1.5 → orders would be rejected by hba.rule[1] (host orders app 10.0.1.0/24 reject); today line 2 (host all all 10.0.0.0/8 scram-sha-256) admits them", impact.Message);
    }

    [Fact]
    public void A_session_no_new_rule_matches_is_rejected_and_another_method_is_reported_apart()
    {
        var next = "local all postgres peer\nhost all all 192.168.0.0/16 scram-sha-256\n";
        var impacts = HbaSessions.Impacts(HbaFile.Parse(Live).Rules, HbaFile.Parse(next).Rules,
            [Sessions("app", "orders", "10.0.1.5"), Sessions("report", "dw", "192.168.4.2", 3), Sessions("postgres", "postgres", null)], [Rule("local all postgres peer"), Rule("host all all 192.168.0.0/16 scram-sha-256")]);
        Assert.Equal(2, impacts.Count);
        Assert.Equal(SessionImpactKind.Rejected, impacts[0].Kind);
        Assert.Null(impacts[0].Address);
        Assert.StartsWith("1 session of app@10.0.1.5 → orders would be rejected: no rule of the new pg_hba.conf matches them", impacts[0].Message);
        Assert.Equal(SessionImpactKind.MethodChanged, impacts[1].Kind);
        Assert.Equal("3 sessions of report@192.168.4.2 → dw would be admitted by hba.rule[1] with scram-sha-256 instead of md5 (line 3 today): the client must be able to authenticate that way", impacts[1].Message);
    }

    [Fact]
    public void Sessions_the_live_file_refuses_already_and_unchanged_ones_are_not_reported()
    {
        var live = "local all postgres peer\nhost all all 10.0.0.0/8 reject\nhost all all 0.0.0.0/0 scram-sha-256\n";
        var next = "local all postgres peer\nhost all all 0.0.0.0/0 scram-sha-256\n";
        var impacts = HbaSessions.Impacts(HbaFile.Parse(live).Rules, HbaFile.Parse(next).Rules,
            [Sessions("app", "orders", "172.16.0.1"), Sessions("old", "orders", "10.1.1.1"), Sessions("repl", "replication", "172.16.0.9")], []);
        // replication is not matched by "all": both files reject it, so it is not this change's doing.
        Assert.Empty(impacts);
    }

    [Fact]
    public void A_rule_outside_the_manifest_is_named_by_its_line()
    {
        var next = "local all postgres peer\nhost all all 10.0.0.0/8 reject\n";
        var impact = Assert.Single(HbaSessions.Impacts(HbaFile.Parse(Live).Rules, HbaFile.Parse(next).Rules, [Sessions("app", "orders", "10.0.1.5", ssl: true)], []));
        Assert.Equal("1 session of app@10.0.1.5 → orders (ssl) would be rejected by line 2 of the new pg_hba.conf (host all all 10.0.0.0/8 reject); today line 2 (host all all 10.0.0.0/8 scram-sha-256) admits them", impact.Message);
    }
}
