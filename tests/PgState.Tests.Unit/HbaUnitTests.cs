using System.Net;
using System.Text;
using PgState.Engine.Resources;
using PgState.Modules.Hba;

namespace PgState.Tests.Unit;

/// <summary>Normalisation, diff, shadowing and matching: pure functions, no server.</summary>
public class HbaUnitTests
{
    private static HbaRule Rule(string type, string db, string user, string? address, string method, params (string, string)[] options) =>
        HbaRule.Create(type, db.Split(',').Select(d => HbaName.FromManifest(d, false)), user.Split(',').Select(u => HbaName.FromManifest(u, true)), address, method,
            options.Select(o => KeyValuePair.Create(o.Item1, o.Item2)));

    private static Diff<HbaWrite> Diff(IReadOnlyList<HbaRule> desired, IReadOnlyList<HbaFileRule> live, bool textDiffers = true)
    {
        var diff = new Diff<HbaWrite>("hba");
        HbaDiff.Diff(desired, live, new HbaWrite("/x", [], []), textDiffers, diff);
        return diff;
    }

    [Theory]
    [InlineData("host all all 192.168.1.50/32 md5", "host  all   all  192.168.1.50  255.255.255.255   md5")]
    [InlineData("host app,reporting app 10.0.0.0/8 scram-sha-256", "host reporting,app app 10.0.0.0 255.0.0.0 scram-sha-256")]
    [InlineData("host all all ::1/128 trust", "host all all 0:0:0:0:0:0:0:1/128 trust")]
    [InlineData("hostssl all all all cert clientname=DN map=x", "hostssl all all all cert map=x clientname=DN")]
    [InlineData("host \"a\"\"b\" all all md5", "host a\"\"\"b\" all all md5")]
    public void Equivalent_lines_normalise_to_the_same_rule(string a, string b) =>
        Assert.Equal(HbaFile.Parse(a).Rules.Single().Rule.Key, HbaFile.Parse(b).Rules.Single().Rule.Key);

    [Fact]
    public void Parsing_reads_quotes_comments_and_line_numbers()
    {
        var file = HbaFile.Parse("# comment\n\nlocal \"my db\",all \"Bob\" trust # trailing\nhost all all 10.0.0.1 255.255.255.255 md5\n");
        Assert.Equal([3, 4], file.Rules.Select(r => r.Line));
        Assert.Equal(["\"my db\"", "all"], file.Rules[0].Rule.Databases.Select(d => d.Render()));
        Assert.Equal([new HbaName(HbaNameKind.Name, "Bob")], file.Rules[0].Rule.Users);
        Assert.Equal("10.0.0.1/32", file.Rules[1].Rule.Address);
    }

    [Fact]
    public void Keywords_count_only_unquoted_and_exactly_as_postgresql_reads_them()
    {
        var file = HbaFile.Parse("host Replication ALL all md5\nhost \"all\" \"+admins\" all md5\nhost replication +admins all md5\n");
        Assert.Equal(new HbaName(HbaNameKind.Name, "Replication"), file.Rules[0].Rule.Databases.Single());
        Assert.Equal(new HbaName(HbaNameKind.Name, "ALL"), file.Rules[0].Rule.Users.Single());
        Assert.Equal(new HbaName(HbaNameKind.Name, "all"), file.Rules[1].Rule.Databases.Single());
        Assert.Equal(new HbaName(HbaNameKind.Name, "+admins"), file.Rules[1].Rule.Users.Single());
        Assert.Equal(new HbaName(HbaNameKind.Keyword, "replication"), file.Rules[2].Rule.Databases.Single());
        Assert.Equal(new HbaName(HbaNameKind.Group, "admins"), file.Rules[2].Rule.Users.Single());
        // Written back, a name that looks like a keyword is quoted, so PostgreSQL reads the same name.
        var manifest = Rule("host", "Replication,\"all\"", "ALL", "all", "md5");
        Assert.Equal("host \"Replication\",\"all\" \"ALL\" all md5", manifest.Describe());
        Assert.Equal(manifest.Key, HbaFile.Parse(manifest.ToLine()).Rules.Single().Rule.Key);
    }

    [Fact]
    public void Values_with_separators_quotes_and_hashes_render_as_one_token_and_read_back()
    {
        var rule = Rule("host", "db one,x#y", "a\"b", "all", "ldap", ("ldapsearchfilter", "(uid=$username) # x"), ("ldapprefix", "cn=, o"));
        var parsed = HbaFile.Parse(rule.ToLine()).Rules.Single().Rule;
        Assert.Equal(rule.Key, parsed.Key);
    }

    [Fact]
    public void A_backslash_at_the_end_of_a_value_is_quoted_so_postgresql_16_does_not_join_lines()
    {
        var rule = Rule("host", "all", "all", "all", "md5", ("map", "x\\"));
        Assert.EndsWith("\"", rule.ToLine());
        var file = HbaFile.Parse(rule.ToLine() + "\nhost all all 0.0.0.0/0 trust\n", major: 16);
        Assert.Equal(2, file.Rules.Count);
    }

    [Fact]
    public void Latin1_bytes_and_a_bom_in_lines_pgstate_does_not_own_survive_byte_for_byte()
    {
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.Latin1.GetBytes("# caf\u00e9 owned by someone else\nlocal all all peer\n")).ToArray();
        var file = HbaFile.Parse(bytes);
        Assert.Single(file.Rules);
        Assert.Equal(bytes, file.Bytes);
    }

    [Fact]
    public void Include_directives_are_read_on_16_and_are_rules_nowhere()
    {
        var text = "include_if_exists extra.conf\ninclude_dir conf.d\nlocal all all peer\n";
        var file = HbaFile.Parse(text, major: 16);
        Assert.Equal(["include_if_exists extra.conf", "include_dir conf.d"], file.Includes.Select(i => $"{i.Kind} {i.Path}"));
        Assert.Single(file.Rules);
        Assert.Equal(2, HbaFile.Parse(text, major: 15).Problems.Count);
    }

    [Fact]
    public void Reordering_two_rules_is_a_move()
    {
        var a = Rule("local", "all", "postgres", null, "peer");
        var b = Rule("host", "all", "all", "10.0.0.0/8", "md5");
        var c = Rule("host", "all", "all", "0.0.0.0/0", "reject");
        var live = new[] { a, b, c }.Select((r, i) => new HbaFileRule(i + 1, r, "")).ToList();
        var move = Assert.Single(Diff([a, c, b], live).Changes).Change;
        Assert.Equal(ChangeAction.Update, move.Action);
        Assert.Contains("moved", move.Note);
    }

    [Fact]
    public void Added_and_removed_rules_have_positions()
    {
        var a = Rule("local", "all", "postgres", null, "peer");
        var b = Rule("host", "all", "all", "10.0.0.0/8", "md5");
        var live = new List<HbaFileRule> { new(7, a, ""), new(9, Rule("host", "all", "all", "0.0.0.0/0", "trust"), "") };
        Assert.Equal(["+ hba.rule[1]", "- hba.line[9]"], Diff([a, b], live).Changes.Select(c => $"{c.Change.Action.Symbol()} {c.Change.Address}"));
    }

    [Fact]
    public void Large_lists_use_the_linear_paths_and_still_find_one_move()
    {
        var rules = Enumerable.Range(0, 5000).Select(i => Rule("host", "db" + i, "all", "10.0.0.0/8", "md5")).ToList();
        var live = rules.Select((r, i) => new HbaFileRule(i + 1, r, "")).ToList();
        Assert.Empty(Diff(rules, live, textDiffers: false).Changes);
        var swapped = rules.ToList();
        (swapped[10], swapped[4000]) = (swapped[4000], swapped[10]);
        var changes = Diff(swapped, live).Changes;
        Assert.All(changes, c => Assert.Equal(ChangeAction.Update, c.Change.Action));
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
        var warning = Assert.Single(Diff(
            [Rule("host", "replication", "all", "192.168.1.0/24", "trust"), Rule("host", "replication", "backup_user", "192.168.1.50/32", "scram-sha-256")],
            []).Warnings);
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
    [InlineData("fe80::1%eth0/64", "not valid CIDR")]
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
        var bound = TestData.Bind<BoundHba>(new HbaModule(), File.ReadAllText(Path.Combine(TestData.RepositoryRoot, "examples", "hba.yaml")));
        var rendered = bound.Candidate(HbaFile.Parse(""));
        Assert.Equal(4, HbaFile.Parse(rendered).Rules.Count);
        var baseline = File.ReadAllText(Path.Combine(TestData.RepositoryRoot, "tests", "PgState.Tests.Unit", "__snapshots__", "HbaUnitTests.Rendered_file_of_the_example_matches_its_baseline.snap"));
        var lines = System.Text.Json.JsonSerializer.Deserialize<string[]>(baseline.TrimStart('\uFEFF'))!;
        Assert.Equal(string.Join('\n', lines), Encoding.UTF8.GetString(rendered));
    }
}
