using PgState.Engine.Resources;
using PgState.Modules.Backups;

namespace PgState.Tests.Unit;

/// <summary>The pure parts of restore drills: targets, probe SQL, WAL names and gaps, recovery settings, the server log reader.</summary>
public class DrillUnitTests
{
    [Theory]
    [InlineData("latest", "latest")]
    [InlineData("1h ago", "1h ago")]
    [InlineData("90min ago", "90min ago")]
    [InlineData("2026-03-01 12:00:00+00", "2026-03-01 12:00:00+00")]
    [InlineData("2026-03-01T12:00:00Z", "2026-03-01 12:00:00+00")]
    [InlineData("2026-03-01 14:30:15.25+02:00", "2026-03-01 12:30:15.25+00")]
    [InlineData("2026-03-01 14:30-0130", "2026-03-01 16:00:00+00")]
    public void Targets_parse_to_one_moment_in_UTC(string text, string described)
    {
        Assert.True(DrillTarget.TryParse(text, out var target, out var error), error);
        Assert.Equal(described, target.Describe());
    }

    [Theory]
    [InlineData("yesterday", "is not latest, a timestamp with a time zone")]
    [InlineData("2026-03-01 12:00:00", "has no time zone")]
    [InlineData("2026-02-30 12:00:00Z", "is not a valid date and time")]
    [InlineData("1 hour ago", "is not latest")]
    [InlineData("5y ago", "is not a duration")]
    [InlineData("0s ago", "write latest")]
    public void Bad_targets_say_why(string text, string why)
    {
        Assert.False(DrillTarget.TryParse(text, out _, out var error));
        Assert.Contains(why, error);
    }

    [Fact]
    public void A_relative_target_resolves_against_the_start_of_the_run()
    {
        var now = new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
        Assert.True(DrillTarget.TryParse("30min ago", out var target, out _));
        Assert.Equal(now.AddMinutes(-30), target.Resolve(now));
        Assert.Null(DrillTarget.LatestTarget.Resolve(now));
    }

    [Theory]
    [InlineData("select 1")]
    [InlineData("  -- a comment\n  SELECT count(*) FROM t;  \n -- trailing\n")]
    [InlineData("with x as (select 1) select * from x")]
    [InlineData("values (1)")]
    [InlineData("table pg_class")]
    [InlineData("select 'a;b', \"x;y\", $$;$$, $tag$ ; delete $tag$ /* ; */")]
    [InlineData("select E'it\\'s;'")]
    [InlineData("/* outer /* nested; */ still comment */ select 1")]
    public void Reading_queries_pass(string sql) => Assert.Null(ProbeSql.Check(sql));

    [Theory]
    [InlineData("delete from t", "it starts with DELETE")]
    [InlineData("select 1; select 2", "more than one statement")]
    [InlineData("select 1; drop table t;", "more than one statement")]
    [InlineData("with d as (delete from t returning *) select count(*) from d", "holds DELETE")]
    [InlineData("  ", "no SQL")]
    [InlineData("select 'open", "not closed")]
    [InlineData("select 1 /* open", "not closed")]
    [InlineData("explain analyze select 1", "it starts with EXPLAIN")]
    public void Other_statements_are_refused(string sql, string why) => Assert.Contains(why, ProbeSql.Check(sql));

    [Fact]
    public void The_final_semicolon_goes_so_the_probe_nests_in_a_subquery()
    {
        Assert.Equal("select 1 ", ProbeSql.WithoutFinalSemicolon("select 1 ; -- done\n"));
        Assert.Equal("select ';'", ProbeSql.WithoutFinalSemicolon("select ';'"));
    }

    [Fact]
    public void Probe_values_are_judged_as_text_or_within_bounds()
    {
        var exact = new DrillProbe("p", "select 1", null, "100", null, null, null);
        Assert.Null(exact.Judge("100"));
        Assert.Equal("expected 100, got 99", exact.Judge("99"));
        Assert.Equal("expected 100, got NULL", exact.Judge(null));
        var bounded = new DrillProbe("p", "select 1", null, null, 10, 20.5m, null);
        Assert.Null(bounded.Judge("20.5"));
        Assert.Equal("expected a value between 10 and 20.5, got 21", bounded.Judge("21"));
        Assert.Equal("expected a number between 10 and 20.5, got abc", bounded.Judge("abc"));
        Assert.Null(new DrillProbe("p", "select 1", null, null, null, null, null).Judge(null));
    }

    [Fact]
    public void Segment_names_and_numbers_round_trip()
    {
        const long size = 16 * 1024 * 1024;
        Assert.True(WalSegment.TryParse("0000000100000002000000FF", size, out var s));
        Assert.Equal(2u * 256 + 255, s.Number);
        Assert.Equal("000000010000000300000000", s.Next.Name(size));
        Assert.Equal("3/0", Lsn.Format(s.Next.StartLsn(size)));
        Assert.False(WalSegment.TryParse("000000010000000000000001.partial", size, out _));
        Assert.True(WalSegment.TryParse("000000010000000000000003", 64L * 1024 * 1024, out var big));
        Assert.Equal("0/C000000", Lsn.Format(big.StartLsn(64L * 1024 * 1024)));
    }

    [Fact]
    public void A_gap_names_the_missing_segments_and_what_follows()
    {
        const long size = 16 * 1024 * 1024;
        Assert.True(WalSegment.TryParse("000000010000000000000003", size, out var last));
        string[] archive = ["000000010000000000000002", "000000010000000000000003", "000000010000000000000006", "000000010000000000000007",
            "000000010000000000000002.00000028.backup", "00000002.history", ".000000010000000000000008.tmp", "000000020000000000000009"];
        var gap = WalGap.Find(archive, last, size);
        Assert.NotNull(gap);
        Assert.Equal("000000010000000000000004", gap.FirstMissing.Name(size));
        Assert.Equal("000000010000000000000005", gap.LastMissing.Name(size));
        Assert.Equal("000000010000000000000006", gap.NextPresent.Name(size));
        Assert.Equal("000000010000000000000007", gap.LastInArchive.Name(size));
        Assert.Equal(2ul, gap.Count);
        // The end of the archive, or the next segment archived while recovery ran: no gap.
        Assert.Null(WalGap.Find(archive[..2], last, size));
        Assert.Null(WalGap.Find([.. archive, "000000010000000000000004"], last, size));
    }

    [Fact]
    public void Restore_commands_follow_the_archiving_method()
    {
        Assert.Equal("cp -- /pg_archive/%f %p", RestoreCommands.For(new ArchiveMethodFact("copy", "/pg_archive/", null, null), null, out _));
        Assert.Equal("cp -- '/arch ive'\\''s 100%%/'%f %p", RestoreCommands.For(new ArchiveMethodFact("copy", "/arch ive's 100%", null, null), null, out _));
        Assert.Equal("pgbackrest --stanza=main archive-get %f \"%p\"", RestoreCommands.For(new ArchiveMethodFact("pgbackrest", null, "main", null), null, out _));
        Assert.Equal("pgbackrest --config=/etc/pgbackrest/db.conf --stanza=main archive-get %f \"%p\"",
            RestoreCommands.For(new ArchiveMethodFact("pgbackrest", null, "main", null), new PgBackRestFact("main", "/etc/pgbackrest/db.conf", null), out _));
        Assert.Equal("my-get %f %p", RestoreCommands.For(new ArchiveMethodFact("command", null, null, null) { RestoreCommand = "my-get %f %p" }, null, out _));
        Assert.Null(RestoreCommands.For(new ArchiveMethodFact("command", null, null, null), null, out var error));
        Assert.Contains("needs spec.archiving.restoreCommand", error);
        Assert.Null(RestoreCommands.For(null, null, out error));
        Assert.Contains("declares no method", error);
    }

    [Fact]
    public void Recovery_settings_reset_other_targets_and_quote_for_postgresql_conf()
    {
        var block = RecoverySettings.Block("cp -- '/a b'/%f %p", new DateTime(2026, 3, 1, 12, 0, 0, 250, DateTimeKind.Utc), "drill");
        Assert.StartsWith("# BEGIN pgstate restore: drill.", block);
        Assert.Contains("restore_command = 'cp -- ''/a b''/%f %p'\n", block);
        Assert.Contains("recovery_target_time = '2026-03-01 12:00:00.250000+00'\n", block);
        Assert.Contains("recovery_target_name = ''\n", block);
        Assert.Contains("recovery_target_lsn = ''\n", block);
        Assert.Contains("recovery_target_action = 'promote'\n", block);
        Assert.EndsWith("# END pgstate restore\n", block);
        Assert.Contains("recovery_target_time = ''\n", RecoverySettings.Block("x", null, "latest"));
        Assert.Equal("'a\\\\b'", RecoverySettings.Quote("a\\b"));
        Assert.Throws<ArgumentException>(() => RecoverySettings.Quote("a\nb"));
    }

    [Fact]
    public void Server_options_are_single_words_for_the_shell_pg_ctl_runs()
    {
        Assert.Equal("-c 'listen_addresses=' -c 'unix_socket_directories=/tmp/it'\\''s dir'",
            TemporaryServer.Options([("listen_addresses", ""), ("unix_socket_directories", "/tmp/it's dir")]));
    }

    [Fact]
    public void The_isolation_settings_keep_the_drill_server_off_production()
    {
        var settings = TemporaryServer.IsolationSettings("/w/data", "/w/socket", 5999, "/w/hba", "/w/ident", 15).ToDictionary(s => s.Name, s => s.Value);
        Assert.Equal("off", settings["archive_mode"]);
        Assert.Equal("", settings["listen_addresses"]);
        Assert.Equal("/w/socket", settings["unix_socket_directories"]);
        Assert.Equal("/w/data", settings["data_directory"]);
        Assert.Equal("", settings["primary_conninfo"]);
        Assert.Equal("", settings["recovery_end_command"]);
        Assert.Equal("", settings["external_pid_file"]);
        Assert.Equal("", settings["archive_library"]);
        Assert.DoesNotContain("archive_library", TemporaryServer.IsolationSettings("/w/data", "/w/s", 1, "h", "i", 14).Select(s => s.Name));
        Assert.Contains("stats_temp_directory", TemporaryServer.IsolationSettings("/w/data", "/w/s", 1, "h", "i", 14).Select(s => s.Name));
        // drill.settings may not undo any of them.
        Assert.All(settings.Keys.Where(k => k is not "shared_buffers" and not "huge_pages"), k => Assert.Contains(k, DrillBinder.Reserved));
    }

    [Fact]
    public void The_log_reader_follows_recovery()
    {
        var log = new ServerLog("/nonexistent");
        foreach (var line in new[]
        {
            "2026-11-24 03:06:05.761 UTC [15624] LOG:  starting archive recovery",
            "2026-11-24 03:06:05.834 UTC [15624] LOG:  restored log file \"000000010000000000000002\" from archive",
            "2026-11-24 03:06:05.920 UTC [15624] LOG:  redo starts at 0/2000028",
            "2026-11-24 03:06:05.944 UTC [15624] LOG:  restored log file \"000000010000000000000003\" from archive",
            "cp: cannot stat '/a/000000010000000000000004': No such file or directory",
            "2026-11-24 03:06:06.000 UTC [15624] LOG:  recovery stopping before commit of transaction 745, time 2026-11-24 03:05:48.1+00",
            "2026-11-24 03:06:06.019 UTC [15624] LOG:  redo done at 0/30040C8 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.09 s",
            "2026-11-24 03:06:06.019 UTC [15624] LOG:  last completed transaction was at log time 2026-11-24 03:05:47.721097+00",
            "2026-11-24 03:06:06.070 UTC [15624] LOG:  restored log file \"000000010000000000000003\" from archive",
            "2026-11-24 03:06:06.168 UTC [15624] LOG:  selected new timeline ID: 2",
        })
        {
            log.Line(line);
        }
        Assert.Equal(2, log.SegmentsRestored);
        Assert.Equal("000000010000000000000002", log.FirstSegment);
        Assert.Equal("000000010000000000000003", log.LastSegment);
        Assert.Equal("0/2000028", Lsn.Format(log.RedoStart!.Value));
        Assert.Equal("0/30040C8", Lsn.Format(log.RedoDone!.Value));
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 3, 5, 47, TimeSpan.Zero).AddTicks(7210970), log.LastTransaction);
        Assert.StartsWith("recovery stopping before commit of transaction 745", log.Stopping);
        Assert.Equal("2", log.NewTimeline);
        Assert.Empty(log.Problems);
        log.Line("2026-11-24 03:06:07.000 UTC [15624] FATAL:  recovery ended before configured recovery target was reached");
        Assert.Equal("2026-11-24 03:06:07.000 UTC [15624] FATAL:  recovery ended before configured recovery target was reached", log.Quote());
    }

    [Fact]
    public void Drill_schedule_files_have_their_own_plan_addresses()
    {
        Assert.Equal("backups.nightly.drill.timer", BackupUnits.Address("db1", "/etc/systemd/system/pgstate-drill-db1-nightly.timer"));
        Assert.Equal("backups.nightly.drill.service", BackupUnits.Address("db1", "/etc/systemd/system/pgstate-drill-db1-nightly.service"));
        Assert.Equal("backups.nightly.drill.cron", BackupUnits.Address("db1.example", "/etc/cron.d/pgstate-drill-db1_example-nightly"));
        Assert.Equal("backups.nightly.timer", BackupUnits.Address("db1", "/etc/systemd/system/pgstate-backup-db1-nightly.timer"));
    }
}

public class DrillReportTests
{
    private static readonly DrillReport Sample = new()
    {
        Name = "nightly",
        Host = "db1",
        Kind = "drill",
        StartedUtc = new DateTime(2026, 3, 1, 4, 0, 0, DateTimeKind.Utc),
        EndedUtc = new DateTime(2026, 3, 1, 4, 1, 0, DateTimeKind.Utc),
        Target = "latest",
        TargetUtc = new DateTime(2026, 3, 1, 4, 0, 0, DateTimeKind.Utc),
        Backup = "/b/20260301T023000Z",
        BackupBytes = 1024L * 1024 * 1024,
        Verification = "pg_verifybackup passed",
        Directory = "/b/.pgstate-drill-nightly-20260301T040000Z",
        SegmentsFromArchive = 70,
        FirstSegment = "000000010000000000000010",
        LastSegment = "000000010000000000000055",
        RecoveryEndLsn = "0/55001234",
        WalBytes = 1100L * 1024 * 1024,
        LastTransactionUtc = new DateTime(2026, 3, 1, 3, 59, 58, 500, DateTimeKind.Utc),
        Timeline = "2",
        CopySeconds = 4.2,
        ReplaySeconds = 30.1,
        ReplayMegabytesPerSecond = 36.5,
        RpoSeconds = 1.5,
        RtoSeconds = 34.3,
        MaxRpoSeconds = 600,
        MaxRtoSeconds = 30,
        Probes = [new DrillProbeResult("orders", "0", false, "expected a value of at least 1, got 0")],
        Passed = false,
        Failures = ["probe orders: expected a value of at least 1, got 0", "RTO 34.3 s exceeds maxRto 30s"],
    };

    [Fact]
    public void The_text_report_shows_backup_wal_rpo_rto_probes_and_failures()
    {
        var text = DrillReports.Text(Sample);
        Assert.StartsWith("Restore drill of backup nightly (host db1): FAILED\n", text);
        Assert.Contains("  backup        /b/20260301T023000Z (1024.0 MB; pg_verifybackup passed)\n", text);
        Assert.Contains("  WAL replayed  70 segment(s) from the archive (000000010000000000000010 … 000000010000000000000055), 1100.0 MB, 36.5 MB/s\n", text);
        Assert.Contains("  recovery end  LSN 0/55001234, last transaction 2026-03-01 03:59:58.500+00, new timeline 2\n", text);
        Assert.Contains("  RPO           1.5 s (max 10.0 min: ok)\n", text);
        Assert.Contains("  RTO           34.3 s (max 30.0 s: exceeded); copy 4.2 s, start and replay 30.1 s\n", text);
        Assert.Contains("  probe orders  0: expected a value of at least 1, got 0\n", text);
        Assert.EndsWith("  FAILED: RTO 34.3 s exceeds maxRto 30s\n", text);
    }

    [Fact]
    public void The_markdown_and_json_reports_carry_the_same_verdict()
    {
        var markdown = DrillReports.Markdown(Sample);
        Assert.StartsWith("### Restore drill of `nightly` on `db1`: **failed**\n", markdown);
        Assert.Contains("| RTO | 34.3 s (max 30.0 s: exceeded); copy 4.2 s, start and replay 30.1 s |", markdown);
        Assert.Contains("> [!CAUTION]\n> probe orders: expected a value of at least 1, got 0\n", markdown);
        var json = DrillReports.Json(Sample);
        Assert.Contains("\"passed\": false", json);
        Assert.Contains("\"rtoSeconds\": 34.3", json);
        var path = Path.Combine(Path.GetTempPath(), $"drill-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        try
        {
            Assert.Equal(Sample.Failures, DrillReports.ReadStatus(path)!.Failures);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
