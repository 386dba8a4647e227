using System.Globalization;
using Npgsql;
using PgState.Engine.Host;
using PgState.Tests.Infrastructure;

namespace PgState.Tests.Backups;

/// <summary>
/// `pgstate restore NAME --to DIR`: the real restore. Its own cluster: a restored server started with
/// its own configuration archives into this cluster's archive once promoted. The backup's
/// configuration names a port and socket directory of their own (ALTER SYSTEM, overridden on the
/// running server's command line), so the restored server starts beside the original.
/// </summary>
public sealed class RestoreTests : IAsyncLifetime
{
    private ScratchCluster _cluster = null!;
    private readonly TempDir _dir = new();
    private int _restoredPort;

    private string Archive => Path.Combine(_dir.Path, "archive");

    private string Socket => Path.Combine(_dir.Path, "rsock");

    private string Manifest() => _dir.Write("restore.yaml", _cluster.Manifest("db",
        $"  archiving:\n    mode: \"on\"\n    method: copy\n    destination: {Archive}\n" +
        $"  backupScheduling: {{unitDirectory: {_dir.Path}/units, cronDirectory: {_dir.Path}/cron}}\n" +
        $"  backups:\n    - {{name: nightly, schedule: \"*-*-* 02:30:00\", destination: {_dir.Path}/backups}}\n", "allowed"));

    public async Task InitializeAsync()
    {
        _cluster = await ScratchCluster.StartAsync();
        Directory.CreateDirectory(Archive);
        Directory.CreateDirectory(Socket);
        await _cluster.ChownToServerAsync(_dir.Path);
        var apply = await CliRunner.RunAsync("apply", "--auto-approve", Manifest());
        Assert.True(apply.ExitCode == 0, apply.ToString());
        using (var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            l.Start();
            _restoredPort = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        }
        await _cluster.ExecAsync($"ALTER SYSTEM SET port = {_restoredPort}");
        await _cluster.ExecAsync($"ALTER SYSTEM SET unix_socket_directories = '{Socket}'");
        await _cluster.ExecAsync("ALTER SYSTEM SET listen_addresses = ''");
        await _cluster.ExecAsync("create table r(batch int)");
        var backup = await CliRunner.RunAsync("backup", "run", "nightly", "--manifest", Manifest());
        Assert.True(backup.ExitCode == 0, backup.ToString());
    }

    public async Task DisposeAsync()
    {
        foreach (var d in Directory.GetDirectories(_dir.Path, "restored*"))
        {
            await _cluster.AsServerUserAsync(Path.Combine(_cluster.BinDirectory, "pg_ctl"), ["-D", d, "-m", "immediate", "-w", "stop"], check: false);
        }
        await _cluster.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task Restore_leaves_a_directory_ready_to_start_and_start_promotes_it_at_the_target()
    {
        await _cluster.ExecAsync("insert into r select 1 from generate_series(1, 10)");
        await Task.Delay(1100);
        var t1 = (await _cluster.ScalarAsync<DateTime>("select clock_timestamp()")).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
        await Task.Delay(1100);
        await _cluster.ExecAsync("insert into r select 2 from generate_series(1, 5)");
        var segment = await _cluster.ScalarAsync<string>("select pg_walfile_name(pg_switch_wal())");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(Path.Combine(Archive, segment)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var ready = Path.Combine(_dir.Path, "restored-ready");
        var result = await CliRunner.RunAsync("restore", "nightly", "--manifest", Manifest(), "--to", ready, "--target", t1);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Restore of backup nightly (host db): done", result.Stdout);
        Assert.Contains("Next:", result.Stdout);
        Assert.Contains($"pg_ctl' start -D '{ready}' -l '{ready}/pgstate-restore.log'", result.Stdout);   // quoted for a shell
        Assert.True(File.Exists(Path.Combine(ready, "recovery.signal")));
        var auto = File.ReadAllText(Path.Combine(ready, "postgresql.auto.conf"));
        Assert.Contains("# BEGIN pgstate restore: pgstate restore of backup nightly", auto);
        Assert.Contains($"restore_command = 'cp -- {Archive}/%f %p'", auto);
        Assert.Contains($"recovery_target_time = '{t1.Replace("T", " ", StringComparison.Ordinal).Replace("Z", "+00", StringComparison.Ordinal)}'", auto);
        Assert.Equal(0b111_000_000, Posix.Stat(ready)!.Mode);
        Assert.Equal(Posix.Stat(_cluster.DataDirectory)!.Uid, Posix.Stat(Path.Combine(ready, "global", "pg_control"))!.Uid);

        var again = await CliRunner.RunAsync("restore", "nightly", "--manifest", Manifest(), "--to", ready);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("is not empty", again.Stdout);
        var intoProduction = await CliRunner.RunAsync("restore", "nightly", "--manifest", Manifest(), "--to", Path.Combine(_cluster.DataDirectory, "x"));
        Assert.Equal(1, intoProduction.ExitCode);
        Assert.Contains("the data directory of the running server", intoProduction.Stdout);

        var started = Path.Combine(_dir.Path, "restored-started");
        result = await CliRunner.RunAsync("restore", "nightly", "--manifest", Manifest(), "--to", started, "--target", t1, "--start", "--timeout", "2min");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("recovery stopping before commit", result.Stdout);
        Assert.Contains($"Stop it: runuser -u postgres -- ", result.Stdout);
        await using var connection = new NpgsqlConnection($"Host={Socket};Port={_restoredPort};Username=postgres;Database=postgres;Pooling=false");
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("select count(*)::int, bool_and(batch = 1), pg_is_in_recovery() from r", connection);
        await using var reader = await cmd.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal(10, reader.GetInt32(0));
        Assert.True(reader.GetBoolean(1));
        Assert.False(reader.GetBoolean(2));
    }
}
