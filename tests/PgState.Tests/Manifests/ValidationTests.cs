using PgState.Tests.Infrastructure;

namespace PgState.Tests.Manifests;

/// <summary>
/// Invalid manifests: each gives file:line:col with a clear message, and neither validate nor
/// apply touches the server (postgresql.auto.conf stays byte for byte).
/// Manifest lines 1–7 are the header from ScratchCluster.Manifest; the body starts at line 8.
/// </summary>
[Collection(SharedClusterA.Name)]
public class ValidationTests(ClusterFixture fixture) : IAsyncLifetime
{
    private readonly ScratchCluster _cluster = fixture.Cluster;

    public Task InitializeAsync() => fixture.BeginAsync(GetType());

    Task IAsyncLifetime.DisposeAsync() => Task.CompletedTask;

    public static TheoryData<string, string, int, int, string> Cases => new()
    {
        { "wrong type", "  settings: {}\n  archiving:\n    timeout: [1, 2]", 10, 14, "spec.archiving.timeout: expected string or integer or number or boolean, got a list" },
        { "unknown key in spec", "  archving:\n    mode: \"on\"", 8, 3, "unknown key 'archving' in spec" },
        { "unknown key nested", "  archiving:\n    modee: \"on\"", 9, 5, "unknown key 'modee' in spec.archiving" },
        { "bad enum", "  archiving:\n    method: rsync", 9, 13, "spec.archiving.method: \"rsync\" is not one of \"copy\", \"pgbackrest\", \"command\"" },
        { "bad restart policy", "  archiving: {mode: \"on\"}\n  dummy: 1", 9, 3, "unknown key 'dummy' in spec" },
        { "relative destination", "  archiving:\n    method: copy\n    destination: pg_archive", 10, 18, "an absolute path" },
        { "duplicate key", "  archiving:\n    mode: \"on\"\n    mode: \"off\"", 10, 5, "duplicate key 'mode' (first defined at 9:5)" },
        { "missing env variable", "  archiving:\n    method: copy\n    destination: ${env:PGSTATE_TEST_UNSET_VAR}", 10, 18, "environment variable 'PGSTATE_TEST_UNSET_VAR' is not set" },
        { "malformed env reference", "  archiving:\n    method: copy\n    destination: /a/${env:1BAD}", 10, 18, "bad reference '${env:1BAD}'" },
        { "archive_command without %p", "  archiving:\n    method: command\n    command: cp /x /y", 10, 14, "archive_command must contain %p" },
        { "settings archive_command without %p", "  settings:\n    archive_command: 'cp %f /y'", 9, 22, "archive_command must contain %p" },
        { "copy without destination", "  archiving:\n    method: copy", 9, 5, "method copy needs spec.archiving.destination" },
        { "field of another method", "  archiving:\n    method: copy\n    destination: /a\n    stanza: main", 11, 5, "spec.archiving.stanza is only used with method: pgbackrest" },
        { "parameter set twice", "  archiving:\n    mode: \"on\"\n  settings:\n    archive_mode: \"off\"", 11, 5, "parameter archive_mode is set twice: by spec.settings.archive_mode and by spec.archiving.mode at" },
        { "unknown parameter", "  settings:\n    max_wal_sendrs: 10", 9, 5, "unknown parameter 'max_wal_sendrs' for PostgreSQL 15" },
        { "value out of range", "  settings:\n    archive_timeout: -5", 9, 5, "is outside the allowed range 0 .. " },
        { "bad enum value from pg_settings", "  settings:\n    wal_level: archive", 9, 5, "'archive' is not one of: minimal, replica, logical" },
        { "bad unit", "  settings:\n    shared_buffers: 10parsecs", 9, 5, "invalid unit 'parsecs'" },
        { "not a boolean", "  settings:\n    log_checkpoints: maybe", 9, 5, "'maybe' is not a boolean" },
        { "read-only parameter", "  settings:\n    block_size: 16384", 9, 5, "parameter 'block_size' is read-only" },
        { "bad parameter name", "  settings:\n    \"max-wal\": 1", 9, 5, "'max-wal' is not a valid parameter name" },
        { "yaml syntax", "  archiving:\n    mode: \"on\"\n   bad: 1", 10, 4, "YAML syntax error: While parsing a block mapping, did not find expected key" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Invalid_manifest_reports_position_and_changes_nothing(string kind, string body, int line, int column, string message)
    {
        using var dir = new TempDir();
        var file = dir.Write("bad.yaml", _cluster.Manifest("v", body));
        var autoConfBefore = _cluster.AutoConf;

        var validate = await CliRunner.RunAsync("validate", file);
        Assert.True(validate.ExitCode == 1, $"{kind}: {validate}");
        var lineText = validate.Stderr.Split('\n').FirstOrDefault(l => l.StartsWith($"{file}:{line}:{column}: ", StringComparison.Ordinal));
        Assert.True(lineText is not null && lineText.Contains(message, StringComparison.Ordinal), $"{kind}: expected '{message}' at {line}:{column}\n{validate}");

        var apply = await CliRunner.RunAsync("apply", "--auto-approve", file);
        Assert.Equal(1, apply.ExitCode);
        Assert.Equal("", apply.Stdout);
        Assert.Equal(autoConfBefore, _cluster.AutoConf);
    }

    [Fact]
    public async Task Missing_required_keys_are_all_reported_at_once()
    {
        using var dir = new TempDir();
        var file = dir.Write("bad.yaml", "apiVersion: pgstate/v2\nkind: PostgresHost\nmetadata:\n  labels: {}\nspec:\n  archiving: {mode: maybe}\n");
        var result = await CliRunner.RunAsync("validate", "--offline", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:1:13: apiVersion: must be \"pgstate/v1\", got \"pgstate/v2\"", result.Stderr);
        Assert.Contains($"{file}:3:1: missing required key 'name' in metadata", result.Stderr);
        Assert.Contains($"{file}:5:1: missing required key 'connection' in spec", result.Stderr);
        Assert.Contains($"{file}:6:21: spec.archiving.mode: \"maybe\" is not one of \"on\", \"off\", \"always\"", result.Stderr);
    }

    /// <summary>Everything that can be checked without a server is checked offline, every stage in one run.</summary>
    [Fact]
    public async Task Offline_validation_reports_every_stage_at_once()
    {
        using var dir = new TempDir();
        var file = dir.Write("offline.yaml", _cluster.Manifest("v",
            "  archiving:\n    timeout: 5 minutes\n" +
            "  hba:\n    rules:\n      - {type: host, database: all, user: all, address: 10.0.0.0/33, method: md5}\n" +
            "  backups:\n    - {name: n1, schedule: \"every day\", destination: /srv/b, connection: {password: {fromEnv: PGSTATE_UNSET_SECRET}}}\n" +
            "  roles:\n    - {name: r1, connectionLimit: 99999999999}\n" +
            "  settings:\n    work_mem: ${env:PGSTATE_UNSET_VARIABLE}\n" +
            "  slotsPrune: maybe\n"));
        var result = await CliRunner.RunAsync("validate", "--offline", file);
        Assert.Equal(1, result.ExitCode);
        foreach (var expected in new[]
        {
            "spec.archiving.timeout: \"5 minutes\" is not a time PostgreSQL reads",
            "'10.0.0.0/33' is not valid CIDR",
            "schedule \"every day\" is not a valid systemd OnCalendar expression",
            "99999999999 is out of range",
            "environment variable 'PGSTATE_UNSET_VARIABLE' is not set",
            "spec.slotsPrune: expected boolean",
            "warning: spec.backups[0].connection.password: environment variable 'PGSTATE_UNSET_SECRET' (a secret) is not set",
        })
        {
            Assert.Contains(expected, result.Stderr);
        }
        var required = await CliRunner.RunAsync("validate", "--offline", "--require-secrets", file);
        Assert.Contains("spec.backups[0].connection.password: environment variable 'PGSTATE_UNSET_SECRET' (a secret) is not set [PGS020]", required.Stderr);
        Assert.DoesNotContain("warning: spec.backups[0].connection.password", required.Stderr);
    }

    [Fact]
    public async Task Two_documents_for_the_same_host_name_both_places()
    {
        using var dir = new TempDir();
        var doc = _cluster.Manifest("same", "  settings: {}");
        var file = dir.Write("hosts.yaml", doc + "\n---\n" + doc);
        var result = await CliRunner.RunAsync("validate", "--offline", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:12:12: host 'same' is declared twice: here and at {file}:3:12", result.Stderr);
    }

    [Fact]
    public async Task Environment_values_are_interpolated_and_typed()
    {
        using var dir = new TempDir();
        var file = dir.Write("env.yaml", _cluster.Manifest("env", "  settings:\n    archive_timeout: ${env:TIMEOUT}").Replace($"connection: {{host: {_cluster.SocketDirectory}, port: {_cluster.Port}, user: postgres}}", $"connection:\n    host: {_cluster.SocketDirectory}\n    port: ${{env:PORT}}"));
        var env = new Dictionary<string, string> { ["PORT"] = _cluster.Port.ToString(), ["TIMEOUT"] = "77" };
        var result = await CliRunner.RunAsync(["plan", file], env);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("~ settings.archive_timeout: \"0\" -> \"77s\"", result.Stdout);
    }

    [Fact]
    public async Task A_directory_of_manifests_with_several_documents_is_loaded()
    {
        using var dir = new TempDir();
        dir.Write("a.yaml", _cluster.Manifest("a", "  settings: {archive_timeout: 1min}") + "\n---\n" + _cluster.Manifest("b", "  settings: {archive_timeout: 2min}"));
        dir.Write("c.yml", _cluster.Manifest("c", "  settings: {archive_timeout: 3min}"));
        dir.Write("notes.txt", "not a manifest");
        var result = await CliRunner.RunAsync("plan", dir.Path);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("host \"a\"", result.Stdout);
        Assert.Contains("host \"b\"", result.Stdout);
        Assert.Contains("host \"c\"", result.Stdout);
    }

    [Fact]
    public async Task Github_format_prints_annotations()
    {
        using var dir = new TempDir();
        var file = dir.Write("bad.yaml", _cluster.Manifest("g", "  archiving:\n    method: rsync"));
        var result = await CliRunner.RunAsync("validate", "--format", "github", file);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"::error file={file},line=9,col=13::spec.archiving.method: \"rsync\" is not one of", result.Stdout);
    }

    [Fact]
    public async Task Valid_manifest_validates_with_live_checks()
    {
        using var dir = new TempDir();
        var file = dir.Write("ok.yaml", _cluster.Manifest("ok", "  settings:\n    shared_buffers: 1GB\n    log_checkpoints: true\n    pgaudit.log: all"));
        var result = await CliRunner.RunAsync("validate", file);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("1 host document(s) valid", result.Stderr);
    }
}
