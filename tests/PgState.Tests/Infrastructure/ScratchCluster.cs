using System.Net;
using System.Net.Sockets;
using Npgsql;
using PgState.Engine.Host;

namespace PgState.Tests.Infrastructure;

/// <summary>
/// Where the PostgreSQL servers of each major come from: Debian's package for its own major (15 on
/// Debian 12), scripts/fetch-postgres.sh's cache (npm's @embedded-postgres builds: initdb, pg_ctl,
/// postgres and their libraries, no client tools) for the others. Client tools are always Debian's.
/// </summary>
public static class PostgresServers
{
    /// <summary>The majors the version matrix runs on.</summary>
    public static readonly IReadOnlyList<int> Matrix = [13, 14, 15, 16, 17, 18];

    public static string CacheRoot => Environment.GetEnvironmentVariable("PGSTATE_PG_CACHE") is { Length: > 0 } c ? c : "/var/cache/pgstate-tests/postgres";

    /// <summary>Debian's newest installed major: its server is the default, its client tools serve every cluster.</summary>
    public static int DefaultMajor { get; } = int.Parse(Path.GetFileName(Path.GetDirectoryName(ClientBinDirectory)!), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Debian's bin directory (psql, pg_basebackup, pg_verifybackup, pg_receivewal …).</summary>
    public static string ClientBinDirectory => ScratchCluster.FindBinDirectory();

    /// <summary>The server programs of a major: Debian's when it packages that major, else the fetched ones; null when neither is there.</summary>
    public static string? BinDirectory(int major)
    {
        var debian = $"/usr/lib/postgresql/{major}/bin";
        if (File.Exists(Path.Combine(debian, "initdb")))
        {
            return debian;
        }
        var fetched = Path.Combine(CacheRoot, major.ToString(System.Globalization.CultureInfo.InvariantCulture), "bin");
        return File.Exists(Path.Combine(fetched, "initdb")) ? fetched : null;
    }

    /// <summary>Why a major cannot run here, or null when it can.</summary>
    public static string? Missing(int major) => BinDirectory(major) is null
        ? $"PostgreSQL {major} server binaries are not in /usr/lib/postgresql/{major}/bin nor in {CacheRoot}/{major}: run scripts/fetch-postgres.sh (scripts/test.sh does)"
        : null;
}

/// <summary>
/// A real PostgreSQL cluster in a temporary directory: initdb as the postgres user (when the tests
/// run as root), started with pg_ctl on a Unix socket in that directory and on 127.0.0.1. Any
/// major PostgresServers has: server programs of that major, client tools (psql, pg_basebackup …)
/// from Debian's package.
/// </summary>
public sealed class ScratchCluster : IAsyncDisposable
{
    private static readonly ProcessRunner Runner = ProcessRunner.Default;

    private ScratchCluster(string root, int port, string bin, int major)
    {
        Root = root;
        Port = port;
        BinDirectory = bin;
        Major = major;
    }

    public string Root { get; }

    public string DataDirectory => Path.Combine(Root, "data");

    public string SocketDirectory => Root;

    public int Port { get; }

    /// <summary>The server's own programs (initdb, pg_ctl, postgres) for its major.</summary>
    public string BinDirectory { get; }

    /// <summary>Client tools (psql, pg_basebackup, pg_verifybackup, pg_receivewal): Debian's, whatever the server's major.</summary>
    public string ClientBinDirectory => PostgresServers.ClientBinDirectory;

    public int Major { get; }

    /// <summary>The fetched builds' libraries (their binaries also find them through RUNPATH $ORIGIN/../lib).</summary>
    private string? LibraryDirectory => BinDirectory.StartsWith("/usr/", StringComparison.Ordinal) ? null : Path.Combine(Path.GetDirectoryName(BinDirectory)!, "lib");

    public string LogFile => Path.Combine(Root, "server.log");

    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>The OS user the server runs as.</summary>
    public static string ServerUser => IsRoot ? "postgres" : Environment.UserName;

    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = SocketDirectory,
        Port = Port,
        Username = "postgres",
        Database = "postgres",
        Pooling = false,
    }.ConnectionString;

    public static string FindBinDirectory()
    {
        var candidates = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin"))
            : [];
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")))
            ?? throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the postgresql package (scripts/test.sh does)");
    }

    /// <summary>Creates and starts a cluster of Debian's major. extraOptions go to postgres -c … (the server's command line).</summary>
    public static Task<ScratchCluster> StartAsync(params string[] extraOptions) => StartAsync(PostgresServers.DefaultMajor, extraOptions);

    /// <summary>Creates and starts a cluster of the given major.</summary>
    public static async Task<ScratchCluster> StartAsync(int major, params string[] extraOptions)
    {
        var bin = PostgresServers.BinDirectory(major) ?? throw new InvalidOperationException(PostgresServers.Missing(major));
        var root = Directory.CreateTempSubdirectory($"pgstate-test{major}-").FullName;
        File.SetUnixFileMode(root, (UnixFileMode)0b111_101_101);
        var cluster = new ScratchCluster(root, FreePort(), bin, major);
        Directory.CreateDirectory(cluster.DataDirectory);
        await cluster.ChownToServerAsync(root);
        await cluster.AsServerUserAsync(Path.Combine(bin, "initdb"), ["-N", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-D", cluster.DataDirectory]);
        await cluster.StartServerAsync(extraOptions);
        cluster._originalHba = File.ReadAllText(cluster.HbaPath());
        return cluster;
    }

    private async Task StartServerAsync(string[] extraOptions)
    {
        var options = $"-k {SocketDirectory} -p {Port} -c listen_addresses=127.0.0.1 -c fsync=off " + string.Join(' ', extraOptions.Select(o => "-c " + o));
        await AsServerUserAsync(Path.Combine(BinDirectory, "pg_ctl"), ["-D", DataDirectory, "-o", options, "-l", LogFile, "-w", "-t", "60", "start"]);
    }

    public async Task ChownToServerAsync(string path)
    {
        if (IsRoot)
        {
            await Runner.RunAsync("chown", ["-R", "postgres:postgres", path]);
        }
    }

    /// <summary>Runs a program as the server's OS user (runuser when root); the fetched builds get LD_LIBRARY_PATH.</summary>
    public async Task<ProcessResult> AsServerUserAsync(string program, IReadOnlyList<string> args, bool check = true, string? workingDirectory = null)
    {
        List<string> command = LibraryDirectory is { } lib ? ["env", $"LD_LIBRARY_PATH={lib}", program, .. args] : [program, .. args];
        return IsRoot
            ? await Runner.RunAsync("runuser", ["-u", "postgres", "--", .. command], TimeSpan.FromMinutes(2), check, workingDirectory)
            : await Runner.RunAsync(command[0], command[1..], TimeSpan.FromMinutes(2), check, workingDirectory);
    }

    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    public async Task ExecAsync(string sql)
    {
        await using var c = await OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var c = await OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    public async Task<string> ShowAsync(string name) => await ScalarAsync<string>($"select setting from pg_settings where name = '{name}'");

    private string? _originalHba;

    /// <summary>
    /// Puts the whole cluster back as initdb left it, for test classes that share one cluster:
    /// pg_hba.conf, slots, roles, database settings and postgresql.auto.conf (restarting when a
    /// restart-only value is pending).
    /// </summary>
    public async Task ResetAllAsync()
    {
        if (_originalHba is not null && File.ReadAllText(this.HbaPath()) != _originalHba)
        {
            File.WriteAllText(this.HbaPath(), _originalHba);
            await this.ReloadBySignalAsync();
            await Task.Delay(100);
        }
        foreach (var journal in Directory.GetFiles(DataDirectory, ".*pgstate*"))
        {
            File.Delete(journal);
        }
        await ExecAsync("select pg_drop_replication_slot(slot_name) from pg_replication_slots where not active");
        await ExecAsync(
            "do $$ declare r record; begin for r in select rolname from pg_roles where rolname not like 'pg\\_%' and rolname <> 'postgres' loop " +
            "execute format('drop owned by %I', r.rolname); execute format('drop role %I', r.rolname); end loop; end $$");
        await ExecAsync("alter database postgres reset all");
        await ResetAsync();
    }

    /// <summary>Puts the cluster's configuration back to what initdb wrote and makes it active.</summary>
    public async Task ResetAsync(bool restartIfNeeded = true)
    {
        await ExecAsync("ALTER SYSTEM RESET ALL");
        await ExecAsync("select pg_reload_conf()");
        await Task.Delay(100);
        if (restartIfNeeded && await ScalarAsync<bool>("select exists(select 1 from pg_settings where pending_restart)"))
        {
            await RestartAsync();
        }
    }

    public async Task RestartAsync() =>
        await AsServerUserAsync(Path.Combine(BinDirectory, "pg_ctl"), ["-D", DataDirectory, "-m", "fast", "-w", "-t", "60", "-l", LogFile, "restart"]);

    public string AutoConf => File.ReadAllText(Path.Combine(DataDirectory, "postgresql.auto.conf"));

    /// <summary>A manifest header for this cluster; append spec sections indented by two spaces.</summary>
    public string Manifest(string name, string specBody, string restartPolicy = "never") =>
        $"""
        apiVersion: pgstate/v1
        kind: PostgresHost
        metadata: {"{"}name: {name}{"}"}
        spec:
          connection: {"{"}host: {SocketDirectory}, port: {Port}, user: postgres{"}"}
          dataDirectory: {DataDirectory}
          restart: {"{"}policy: {restartPolicy}, logFile: {LogFile}{"}"}
        {specBody}
        """;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await AsServerUserAsync(Path.Combine(BinDirectory, "pg_ctl"), ["-D", DataDirectory, "-m", "immediate", "-w", "stop"], check: false);
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>xunit fixture: one cluster, for a test class or (through a collection) for several that run one after the other.</summary>
public class ClusterFixture : IAsyncLifetime
{
    public ScratchCluster Cluster { get; private set; } = null!;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private Type? _lastClass;

    protected virtual string[] ServerOptions => [];

    /// <summary>The major of the cluster: Debian's unless a <see cref="ClusterFixture{TMajor}"/> says otherwise.</summary>
    protected virtual int Major => PostgresServers.DefaultMajor;

    /// <summary>Call from each test's InitializeAsync: the first test of a class gets a cluster reset to initdb's state.</summary>
    public async Task BeginAsync(Type testClass)
    {
        await _gate.WaitAsync();
        try
        {
            if (_lastClass != testClass)
            {
                await Cluster.ResetAllAsync();
                _lastClass = testClass;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task InitializeAsync() => Cluster = await ScratchCluster.StartAsync(Major, ServerOptions);

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
    }
}

/// <summary>A cluster that logs every statement (to prove no secret reaches the server log).</summary>
public sealed class LoggingClusterFixture : ClusterFixture
{
    protected override string[] ServerOptions => ["log_statement=all", "log_min_duration_statement=0"];
}

/// <summary>A cluster with a parameter set on its command line (overridden: ALTER SYSTEM cannot win).</summary>
public sealed class CommandLineClusterFixture : ClusterFixture
{
    protected override string[] ServerOptions => ["archive_timeout=60"];
}

/// <summary>
/// Test classes that share one cluster: they run one after the other (one collection) and each
/// starts from a reset cluster. Two such collections keep both cores busy with two clusters
/// instead of one cluster per class.
/// </summary>
[CollectionDefinition(Name)]
public sealed class SharedClusterA : ICollectionFixture<ClusterFixture>
{
    public const string Name = "shared cluster A";
}

[CollectionDefinition(Name)]
public sealed class SharedClusterB : ICollectionFixture<ClusterFixture>
{
    public const string Name = "shared cluster B";
}

public static class ScratchClusterHbaExtensions
{
    public static string HbaPath(this ScratchCluster cluster) => Path.Combine(cluster.DataDirectory, "pg_hba.conf");

    /// <summary>
    /// Reloads with pg_ctl (a signal), for when pg_hba.conf no longer lets a connection in, and waits
    /// (at most 5 s) until the server has read it: a plan right after would otherwise see a
    /// pg_hba.conf newer than the last configuration load, which pgstate reports as a pending reload.
    /// </summary>
    public static async Task ReloadBySignalAsync(this ScratchCluster cluster)
    {
        var written = File.GetLastWriteTimeUtc(cluster.HbaPath());
        await cluster.AsServerUserAsync(Path.Combine(cluster.BinDirectory, "pg_ctl"), ["-D", cluster.DataDirectory, "reload"]);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await cluster.ScalarAsync<DateTime>("select pg_conf_load_time()") >= written)
                {
                    return;
                }
            }
            catch (NpgsqlException)
            {
                // the file on disk does not let this connection in: nothing to wait for through it
                await Task.Delay(200);
                return;
            }
            await Task.Delay(50);
        }
    }
}
