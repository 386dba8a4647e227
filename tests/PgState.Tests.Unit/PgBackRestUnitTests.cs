using PgState.Engine.Manifests;
using PgState.Modules.Backups;
using PgState.Modules.PgBackRest;

namespace PgState.Tests.Unit;

/// <summary>pgbackrest.conf rendering and masking, info's JSON, the backup a restore starts from: no server, no pgbackrest.</summary>
public class PgBackRestUnitTests
{
    private const string Yaml = TestData.Head + """
          dataDirectory: /srv/pg/data
          pgbackrest:
            stanza: main
            configPath: /etc/pgbackrest/db.conf
            repositories:
              - {type: posix, path: /srv/repo/, retention: {full: 2, diff: 3}, cipher: {pass: {fromEnv: CIPHER}}}
              - type: s3
                path: /pgbackrest
                s3: {bucket: b, endpoint: s3.example.com, region: eu-west-1, key: {fromEnv: S3_KEY}, keySecret: {fromEnv: S3_SECRET}}
            processMax: 1
            compress: {type: zst, level: 3}
            options: {log-level-file: detail, repo2-storage-verify-tls: "n"}
        """;

    private static readonly Dictionary<string, string> Secrets = new() { ["CIPHER"] = "c1pher", ["S3_KEY"] = "AKIA-key", ["S3_SECRET"] = "s3-secret" };

    private static RenderedConfig Render()
    {
        var (host, diagnostics) = TestData.Load(Yaml);
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items));
        var bound = TestData.Bind<BoundPgBackRest>(new PgBackRestModule(), Yaml);
        var values = bound.Section.Secrets.ToDictionary(s => s, s => Secrets[s.FromEnv!]);
        return PgBackRestConfig.Render(host!, bound.Section, "/srv/pg/data", values);
    }

    [Fact]
    public void The_configuration_holds_every_option_once_and_secrets_only_in_the_written_text()
    {
        var rendered = Render();
        Assert.Null(rendered.Problem);
        var lines = rendered.Text.Split('\n');
        Assert.StartsWith("# Written by pgstate for host t", lines[0], StringComparison.Ordinal);
        foreach (var expected in new[]
        {
            "[global]", "repo1-type=posix", "repo1-path=/srv/repo", "repo1-retention-full=2", "repo1-retention-diff=3", "repo1-cipher-type=aes-256-cbc",
            "repo1-cipher-pass=c1pher", "repo2-type=s3", "repo2-s3-bucket=b", "repo2-s3-key=AKIA-key", "repo2-s3-key-secret=s3-secret",
            "process-max=1", "compress-type=zst", "compress-level=3", "log-level-file=detail", "repo2-storage-verify-tls=n",
            "[main]", "pg1-path=/srv/pg/data", "pg1-port=5432", "pg1-socket-path=/tmp",
        })
        {
            Assert.Single(lines, expected);
        }
        foreach (var secret in Secrets.Values)
        {
            Assert.DoesNotContain(secret, rendered.Masked, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, PgBackRestConfig.MaskSecrets(rendered.Text), StringComparison.Ordinal);
        }
        Assert.Equal(rendered.Masked, PgBackRestConfig.MaskSecrets(rendered.Text));
    }

    [Fact]
    public void A_changed_secret_shows_as_a_difference_without_its_value()
    {
        var rendered = Render();
        var old = rendered.Text.Replace("c1pher", "old-pass", StringComparison.Ordinal);
        var (before, after) = PgBackRestConfig.FirstDifference(PgBackRestConfig.MaskSecrets(old), rendered.Masked);
        Assert.Equal(before, after);
        Assert.DoesNotContain("pass", before.Replace("(a secret)", "", StringComparison.Ordinal), StringComparison.Ordinal);
        var (b2, a2) = PgBackRestConfig.FirstDifference(PgBackRestConfig.MaskSecrets(old.Replace("process-max=1", "process-max=4", StringComparison.Ordinal)), rendered.Masked);
        Assert.EndsWith("process-max=4", b2, StringComparison.Ordinal);
        Assert.EndsWith("process-max=1", a2, StringComparison.Ordinal);
    }

    [Fact]
    public void A_secret_with_a_line_break_is_refused_instead_of_adding_a_line()
    {
        var (host, _) = TestData.Load(Yaml);
        var bound = TestData.Bind<BoundPgBackRest>(new PgBackRestModule(), Yaml);
        var values = bound.Section.Secrets.ToDictionary(s => s, s => s.FromEnv == "CIPHER" ? "x\nrepo1-path=/tmp/evil" : "v");
        var rendered = PgBackRestConfig.Render(host!, bound.Section, "/srv/pg/data", values);
        Assert.NotNull(rendered.Problem);
        Assert.DoesNotContain("/tmp/evil", rendered.Text, StringComparison.Ordinal);
    }

    private const string InfoJson = """
        [{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000009","min":"000000010000000000000001"}],
          "backup":[
            {"archive":{"start":"000000010000000000000003","stop":"000000010000000000000003"},"info":{"delta":100,"repository":{"delta":10,"size":10},"size":100},
             "label":"20261124-010000F","timestamp":{"start":1795482000,"stop":1795482060},"type":"full"},
            {"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},"info":{"delta":5,"repository":{"delta":1,"size":1},"size":100},
             "label":"20261124-010000F_20261124-020000I","timestamp":{"start":1795485600,"stop":1795485630},"type":"incr"}],
          "cipher":"aes-256-cbc","name":"main","repo":[{"cipher":"aes-256-cbc","key":1,"status":{"code":0,"message":"ok"}}],
          "status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]
        """;

    [Fact]
    public void Info_lists_backups_by_type_and_the_archive_range()
    {
        var info = PgBackRestInfo.Parse(InfoJson, "main");
        Assert.Equal(0, info.StatusCode);
        Assert.False(info.StanzaMissing);
        Assert.Equal("20261124-010000F", info.Newest("full")!.Label);
        Assert.Equal("20261124-010000F_20261124-020000I", info.Newest()!.Label);
        Assert.Null(info.Newest("diff"));
        Assert.Equal("000000010000000000000009", info.ArchiveMax);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(1795485630), info.Newest("incr")!.StoppedUtc);
        Assert.Throws<PgState.Engine.Diagnostics.PgStateException>(() => PgBackRestInfo.Parse(InfoJson, "other"));
        Assert.Throws<PgState.Engine.Diagnostics.PgStateException>(() => PgBackRestInfo.Parse("{not json", "main"));
        Assert.True(PgBackRestInfo.Parse("""[{"name":"main","status":{"code":1,"message":"missing stanza path"}}]""", "main").StanzaMissing);
    }

    [Fact]
    public void A_restore_starts_from_the_newest_backup_that_ended_by_the_target()
    {
        var info = PgBackRestInfo.Parse(InfoJson, "main");
        var backup = new DesiredBackup("b", "hourly", "/d", "plain", "none", "fast", "CRC32C", null, null, null, null, true, "systemd", null) { Tool = DesiredBackup.PgBackRest, PgBackRestType = "incr" };
        Assert.Equal("20261124-010000F_20261124-020000I", PgBackRestSource.Choose(backup, info, null).Label);
        Assert.Equal("20261124-010000F", PgBackRestSource.Choose(backup, info, DateTime.UnixEpoch.AddSeconds(1795485600)).Label);
        var e = Assert.Throws<PgState.Engine.Diagnostics.PgStateException>(() => PgBackRestSource.Choose(backup, info, DateTime.UnixEpoch.AddSeconds(1795482000)));
        Assert.Contains("before the end of the oldest backup of stanza main (20261124-010000F", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void pgBackRest_messages_keep_the_error_and_its_continuation_lines()
    {
        var result = new PgState.Engine.Host.ProcessResult(55, "", "WARN: something first\nERROR: [055]: unable to load info file '/r/archive.info':\n       FileMissingError: unable to open missing file\n");
        Assert.Equal("ERROR: [055]: unable to load info file '/r/archive.info': FileMissingError: unable to open missing file", PgBackRestCli.Message(result));
    }

    [Fact]
    public void archive_command_names_a_configuration_other_than_pgBackRests_default()
    {
        Assert.Equal("pgbackrest --stanza=main archive-push %p", PgState.Modules.Archiving.ArchiveCommands.PgBackRest("main", "/etc/pgbackrest/pgbackrest.conf"));
        Assert.Equal("pgbackrest --config='/srv/pg br/db.conf' --stanza=main archive-push %p", PgState.Modules.Archiving.ArchiveCommands.PgBackRest("main", "/srv/pg br/db.conf"));
    }
}
