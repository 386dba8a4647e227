using System.Net;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Modules.Hba;
using PgState.Tests.Snapshots;
using Snapshooter.Xunit;

namespace PgState.Tests.Hba;

/// <summary>Normalisation, diff, shadowing and matching: pure functions, no server.</summary>
public class HbaUnitTests
{
    private static HbaRule Rule(string type, string db, string user, string? address, string method, params (string, string)[] options) =>
        HbaRule.Create(type, db.Split(','), user.Split(','), address, method, options.Select(o => KeyValuePair.Create(o.Item1, o.Item2)));

    [Theory]
    [InlineData("host all all 192.168.1.50/32 md5", "HOST  all   ALL  192.168.1.50  255.255.255.255   MD5")]
    [InlineData("host app,reporting app 10.0.0.0/8 scram-sha-256", "host reporting,app app 10.0.0.0 255.0.0.0 scram-sha-256")]
    [InlineData("host all all ::1/128 trust", "host all all 0:0:0:0:0:0:0:1/128 trust")]
    [InlineData("hostssl all all all cert clientname=DN map=x", "hostssl all all all cert map=x clientname=DN")]
    public void Equivalent_lines_normalise_to_the_same_rule(string a, string b) =>
        Assert.Equal(HbaFile.Parse(a).Rules.Single().Rule.Key, HbaFile.Parse(b).Rules.Single().Rule.Key);

    [Fact]
    public void Parsing_reads_quotes_comments_and_line_numbers()
    {
        var file = HbaFile.Parse("# comment\n\nlocal \"my db\",all \"Bob\" trust # trailing\nhost all all 10.0.0.1 255.255.255.255 md5\n");
        Assert.Equal([3, 4], file.Rules.Select(r => r.Line));
        Assert.Equal(["all", "my db"], file.Rules[0].Rule.Databases);
        Assert.Equal(["Bob"], file.Rules[0].Rule.Users);
        Assert.Equal("10.0.0.1/32", file.Rules[1].Rule.Address);
    }

    private static readonly HbaWrite Write = new("/x", "", "");

    [Fact]
    public void Reordering_two_rules_is_a_move()
    {
        var a = Rule("local", "all", "postgres", null, "peer");
        var b = Rule("host", "all", "all", "10.0.0.0/8", "md5");
        var c = Rule("host", "all", "all", "0.0.0.0/0", "reject");
        var live = new[] { a, b, c }.Select((r, i) => new HbaFileRule(i + 1, r, "")).ToList();
        var (changes, _) = HbaDiff.Diff([a, c, b], live, Write, textDiffers: true);
        var move = Assert.Single(changes);
        Assert.Equal(ChangeAction.Update, move.Action);
        Assert.Contains("moved", move.Note);
    }

    [Fact]
    public void Added_and_removed_rules_have_positions()
    {
        var a = Rule("local", "all", "postgres", null, "peer");
        var b = Rule("host", "all", "all", "10.0.0.0/8", "md5");
        var live = new List<HbaFileRule> { new(7, a, ""), new(9, Rule("host", "all", "all", "0.0.0.0/0", "trust"), "") };
        var (changes, _) = HbaDiff.Diff([a, b], live, Write, textDiffers: true);
        Assert.Equal(["+ hba.rule[1]", "- hba.line[9]"], changes.Select(c => $"{c.Action.Symbol()} {c.Address}"));
    }

    [Fact]
    public void Large_lists_use_the_linear_paths_and_still_find_one_move()
    {
        var rules = Enumerable.Range(0, 5000).Select(i => Rule("host", "db" + i, "all", "10.0.0.0/8", "md5")).ToList();
        var live = rules.Select((r, i) => new HbaFileRule(i + 1, r, "")).ToList();
        Assert.Empty(HbaDiff.Diff(rules, live, Write, textDiffers: false).Changes);
        var swapped = rules.ToList();
        (swapped[10], swapped[4000]) = (swapped[4000], swapped[10]);
        var (changes, _) = HbaDiff.Diff(swapped, live, Write, textDiffers: true);
        Assert.All(changes, c => Assert.Equal(ChangeAction.Update, c.Action));
        Assert.InRange(changes.Count, 1, 2);
    }

    [Fact]
    public void All_does_not_shadow_replication_but_replication_all_does()
    {
        var wide = Rule("host", "all", "all", "0.0.0.0/0", "md5");
        var replication = Rule("host", "replication", "backup_user", "192.168.1.50/32", "scram-sha-256");
        Assert.False(HbaMatcher.Shadows(wide, replication));
        Assert.True(HbaMatcher.Shadows(Rule("host", "replication", "all", "192.168.1.0/24", "trust"), replication));
        Assert.True(HbaMatcher.Shadows(wide, Rule("hostssl", "app", "app", "10.1.0.0/16", "scram-sha-256")));
        Assert.False(HbaMatcher.Shadows(Rule("hostssl", "all", "all", "0.0.0.0/0", "md5"), Rule("host", "app", "app", "10.1.0.0/16", "md5")));
        Assert.False(HbaMatcher.Shadows(Rule("host", "all", "all", "10.1.0.0/16", "md5"), Rule("host", "all", "all", "10.0.0.0/8", "md5")));
    }

    [Fact]
    public void Shadowed_rule_is_a_warning_naming_both_rules()
    {
        var (_, warnings) = HbaDiff.Diff(
            [Rule("host", "replication", "all", "192.168.1.0/24", "trust"), Rule("host", "replication", "backup_user", "192.168.1.50/32", "scram-sha-256")],
            [], Write, textDiffers: true);
        var warning = Assert.Single(warnings);
        Assert.Equal("hba.rule[1]", warning.Address);
        Assert.Contains("hba.rule[0] (host replication all 192.168.1.0/24 trust)", warning.Message);
    }

    [Fact]
    public void Matcher_applies_first_match_with_replication_and_cidr()
    {
        List<HbaRule> rules = [Rule("local", "all", "postgres", null, "peer"), Rule("host", "replication", "backup_user", "192.168.1.50/32", "scram-sha-256"), Rule("host", "all", "all", "0.0.0.0/0", "reject")];
        Assert.Equal(1, HbaMatcher.FirstMatch(rules, new HbaConnection("host", "replication", "backup_user", IPAddress.Parse("192.168.1.50"))));
        Assert.Null(HbaMatcher.FirstMatch(rules, new HbaConnection("host", "replication", "backup_user", IPAddress.Parse("192.168.1.51"))));
        Assert.Equal(2, HbaMatcher.FirstMatch(rules, new HbaConnection("host", "app", "app", IPAddress.Parse("10.0.0.1"))));
        Assert.Equal(0, HbaMatcher.FirstMatch(rules, new HbaConnection("local", "postgres", "postgres", null)));
    }

    [Theory]
    [InlineData("10.0.0.0/33", "not valid CIDR")]
    [InlineData("10.0.0/8", "not valid CIDR")]
    [InlineData("192.168.1.50", "not valid CIDR")]
    [InlineData("10.0.0.0 255.0.255.0", "not a valid netmask")]
    [InlineData("bad_host!", "is not a CIDR, host name")]
    public void Bad_addresses_are_explained(string address, string message) =>
        Assert.Contains(message, HbaModule.CheckAddress(address));

    [Theory]
    [InlineData("all")]
    [InlineData("samenet")]
    [InlineData("192.168.1.50/32")]
    [InlineData("fe80::/10")]
    [InlineData("10.0.0.0 255.0.0.0")]
    [InlineData("backup.example.com")]
    [InlineData(".example.com")]
    public void Good_addresses_pass(string address) => Assert.Null(HbaModule.CheckAddress(address));

    [Fact]
    public void Rendered_file_of_the_example_matches_its_baseline()
    {
        var loaded = new ManifestLoader(_ => null).Load([Path.Combine(ExamplePlanSnapshotTests.RepositoryRoot, "examples", "hba.yaml")]);
        Assert.False(loaded.Diagnostics.HasErrors);
        var bound = (BoundHba)new HbaModule().Bind(loaded.Hosts.Single(), new DiagnosticBag())!;
        var rendered = bound.Candidate("");
        Assert.Equal(4, HbaFile.Parse(rendered).Rules.Count);
        Snapshot.Match(rendered.Split('\n'));
    }
}
