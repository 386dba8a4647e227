using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Modules.Archiving;
using PgState.Modules.Hba;
using PgState.Modules.Replication;

namespace PgState.Tests.Unit;

/// <summary>What pgstate import writes, read back by pgstate's own YAML reader: odd values, names, comments. Pure, no server.</summary>
public class ImportUnitTests
{
    public static TheoryData<string> OddValues() =>
    [
        "on", "off", "On", "OFF", "yes", "No", "y", "N", "true", "False", "null", "Null", "~", "", " ", "<<", "=",
        "1e3", "1E3", "0x1F", "0o17", "010", "1_000", "1:20", "190:20:30", ".inf", "-.inf", ".NaN", "-.5", "+1", "1.", "0", "-0", "3.14",
        "192.168.1.50", "10.20.0.0/16", "::1", "fe80::1/64",
        "*star", "&anchor", "!tag", "%pct", "@file", "`tick", "|pipe", ">fold", "- dash", "-", "--", "---", "...", "?q", "? q", ":c", ": c",
        "a: b", "a:", "a #b", "a#b", "#c", "[x]", "{y}", "a,b", "a]b", "'single'", "it's", "\"double\"", "\"all\"", "\"\"\"q\"\"\"", "a\"b'c",
        "back\\slash", "trail\\", "trail ", "  lead", "${env:HOME}", "$${literal", "cost $5", "%p and %f", "test ! -f /x/%f && cp %p /x/%f",
        "\"$user\", public", "ünïcödé", "日本語", "emoji 🐘", "/^app_.*$", "+group", "@list", "Replication", "ALL",
        "tab\there", "new\nline", "nul\0", "bell\u0007", "del\u007f", "sep\u2028", "bom\ufeff",
    ];

    private static YamlNode? ReadBack(string yaml, out DiagnosticBag diagnostics)
    {
        diagnostics = new DiagnosticBag();
        var documents = new YamlTreeReader("t.yaml", _ => null, diagnostics).Read(yaml);
        return documents.SingleOrDefault()?.Root;
    }

    [Theory]
    [MemberData(nameof(OddValues))]
    public void Odd_values_read_back_as_the_same_string_in_block_flow_and_list_positions(string value)
    {
        var scalar = YamlOut.String(value);
        var root = new YamlOutMapping(
        [
            new("block", scalar),
            new("flow", new YamlOutMapping([new("v", scalar), new("w", YamlOut.String("x"))], Flow: true)),
            new("list", new YamlOutSequence([new YamlOutItem(scalar), new YamlOutItem(new YamlOutMapping([new("v", scalar)], Flow: true))])),
            new("inline", new YamlOutSequence([new YamlOutItem(scalar), new YamlOutItem(scalar)], Flow: true)),
            new(value.Length > 0 ? value : "k", scalar),
        ]);
        var yaml = YamlEmitter.Write(root);
        var read = ReadBack(yaml, out var diagnostics) as YamlMapping;
        Assert.False(diagnostics.HasErrors, yaml + string.Join("\n", diagnostics.Items.Select(d => d.Message)));
        Assert.NotNull(read);
        void Same(YamlNode? node)
        {
            var s = Assert.IsType<YamlScalar>(node);
            Assert.Equal(ScalarKind.String, s.Kind);
            Assert.Equal(value, s.Text);
        }
        Same(read["block"]);
        Same(read.Mapping("flow")!["v"]);
        Assert.Equal("x", read.Mapping("flow")!.String("w"));
        Same(read.Sequence("list")!.Items[0]);
        Same(((YamlMapping)read.Sequence("list")!.Items[1])["v"]);
        Same(read.Sequence("inline")!.Items[0]);
        Same(read.Sequence("inline")!.Items[1]);
        Same(read[value.Length > 0 ? value : "k"]);
    }

    [Theory]
    [InlineData("10", ScalarKind.Integer)]
    [InlineData("-1", ScalarKind.Integer)]
    [InlineData("0.9", ScalarKind.Float)]
    [InlineData("256MB", ScalarKind.String)]
    [InlineData("5min", ScalarKind.String)]
    [InlineData("007", ScalarKind.String)]
    [InlineData("1e3", ScalarKind.String)]
    public void Setting_values_stay_numbers_only_when_they_are_plain_numbers(string value, ScalarKind kind)
    {
        var read = ReadBack(YamlEmitter.Write(new YamlOutMapping([new("s", YamlOut.Setting(value))])), out _) as YamlMapping;
        var scalar = Assert.IsType<YamlScalar>(read!["s"]);
        Assert.Equal(kind, scalar.Kind);
        Assert.Equal(value, scalar.ScalarText());
    }

    [Fact]
    public void Comments_never_end_early_and_long_flow_mappings_wrap_inside_their_braces()
    {
        var long_ = new YamlOutMapping([.. Enumerable.Range(0, 12).Select(i => new YamlOutEntry($"key{i}", YamlOut.String($"value number {i}")))], Flow: true);
        var root = new YamlOutMapping(
        [
            new("list", new YamlOutSequence([new YamlOutItem(long_, Above: ["above\nwith a newline: not a key"], After: "after # hash")]), Above: ["top"]),
            new("last", YamlOut.Int(1), After: "tab\tand\u2028separator"),
        ]);
        var yaml = YamlEmitter.Write(root);
        Assert.All(yaml.Split('\n'), line => Assert.True(line.Length <= YamlEmitter.Width + 10, line));
        var read = ReadBack(yaml, out var diagnostics) as YamlMapping;
        Assert.False(diagnostics.HasErrors, yaml);
        Assert.NotNull(read);
        var item = Assert.IsType<YamlMapping>(read.Sequence("list")!.Items.Single());
        Assert.Equal(12, item.Count);
        Assert.Equal("value number 11", item.String("key11"));
        Assert.Equal(2, read.Count);
        Assert.Contains("# above\\nwith a newline: not a key", yaml);
    }

    [Theory]
    [InlineData("all", true)]
    [InlineData("all", false)]
    [InlineData("replication", false)]
    [InlineData("Replication", false)]
    [InlineData("ALL", true)]
    [InlineData("+admins", true)]
    [InlineData("+admins", false)]
    [InlineData("@file", false)]
    [InlineData("\"quoted\"", true)]
    [InlineData("a\"b", false)]
    [InlineData("Mixed Case", false)]
    [InlineData("sameuser", false)]
    [InlineData("sameuser", true)]
    public void Literal_hba_names_read_back_as_the_same_literal(string value, bool userField)
    {
        var name = new HbaName(HbaNameKind.Name, value);
        Assert.Equal(name, HbaName.FromManifest(HbaModule.ManifestText(name, userField), userField));
    }

    [Theory]
    [InlineData(HbaNameKind.Keyword, "all", true)]
    [InlineData(HbaNameKind.Keyword, "replication", false)]
    [InlineData(HbaNameKind.Group, "admins", true)]
    [InlineData(HbaNameKind.File, "users.txt", true)]
    [InlineData(HbaNameKind.Regex, "/^app", false)]
    public void Hba_keywords_groups_files_and_regexes_read_back_as_themselves(HbaNameKind kind, string value, bool userField)
    {
        var name = new HbaName(kind, value);
        Assert.Equal(name, HbaName.FromManifest(HbaModule.ManifestText(name, userField), userField));
    }

    [Fact]
    public void Rule_comments_are_the_lines_just_above_and_the_end_of_the_line()
    {
        const string text = "# header of the file\n\n# TYPE DATABASE USER ADDRESS METHOD\n\n# local admins\n# (two lines)\nlocal all postgres peer\n" +
                            "host all all 10.0.0.0 255.0.0.0 md5 # the office\n\n#\nhost \"all\" x 127.0.0.1/32 trust\n";
        var file = HbaFile.Parse(text);
        var comments = HbaModule.Comments(file, "h", 16);
        Assert.Equal("local admins (two lines)", comments[7]);
        Assert.Equal("the office", comments[8]);
        Assert.False(comments.ContainsKey(11));
        Assert.Equal(3, file.Rules.Count);
    }

    [Theory]
    [InlineData("/pg_archive")]
    [InlineData("/var/lib/pgsql/it's here")]
    [InlineData("/a%b/c")]
    public void Copy_archive_command_reads_back_as_its_destination(string destination) =>
        Assert.Equal(destination, ArchivingModule.CopyDestination(ArchiveCommands.Copy(destination)));

    [Fact]
    public void A_command_that_only_looks_like_the_copy_command_is_not_method_copy() =>
        Assert.Null(ArchivingModule.CopyDestination(ArchiveCommands.Copy("/x") + " ; rm -rf /"));

    [Fact]
    public void Password_variables_are_environment_names_and_never_collide()
    {
        var taken = new HashSet<string>();
        Assert.Equal("PGSTATE_PASSWORD_BACKUP_USER", ReplicationModule.PasswordVariable("backup_user", taken));
        Assert.Equal("PGSTATE_PASSWORD_BACKUP_USER_2", ReplicationModule.PasswordVariable("Backup-User", taken));
        Assert.Equal("PGSTATE_PASSWORD_____", ReplicationModule.PasswordVariable("日本 語", taken));
    }
}
