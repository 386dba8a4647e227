using System.Buffers.Binary;
using System.Globalization;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Engine.Host;

/// <summary>What modules get to read and change a host.</summary>
public interface IHostSession
{
    HostManifest Host { get; }

    NpgsqlConnection Connection { get; }

    ProcessRunner Processes { get; }

    ServerInfo Server { get; }

    SecretResolver Secrets { get; }

    HostPaths Paths { get; }

    FactBag Facts { get; }

    Func<string, string?> Environment { get; }

    /// <summary>Progress for the operator (stderr).</summary>
    Action<string> Log { get; }

    /// <summary>Risks the operator accepted on the command line (e.g. "lockout" for --allow-lockout).</summary>
    IReadOnlySet<string> Allowances { get; }

    /// <summary>A second connection, same server and credentials, to another database (e.g. a logical slot's).</summary>
    Task<NpgsqlConnection> OpenDatabaseAsync(string database, CancellationToken cancellationToken);
}

/// <summary>The PostgreSQL majors this pgstate supports: older servers are refused, newer ones get a warning.</summary>
public static class SupportedMajors
{
    public const int Oldest = 13;
    public const int Newest = 18;
}

/// <summary>What the server says about itself, read once per connection.</summary>
public sealed record ServerInfo(
    int VersionNum,
    string Version,
    string DataDirectory,
    bool IsSuperuser,
    string SessionUser,
    string? HbaFile,
    string? ConfigFile,
    int Port,
    bool InRecovery,
    bool CanReadAllSettings,
    bool IsMonitor)
{
    public int Major => VersionNum / 10000;

    /// <summary>pg_control's system identifier, read from the data directory when pgstate can (root or the server's user).</summary>
    public string? SystemIdentifier { get; init; }

    /// <summary>Who identifies the cluster in locks and saved plans: system identifier and data directory (or port).</summary>
    public string Identity => $"{SystemIdentifier ?? "unknown-system"}:{(DataDirectory.Length > 0 ? DataDirectory : "port " + Port)}";
}

/// <summary>Opens and owns the connection to one host; knows how to reload and restart the server.</summary>
internal sealed class HostSession : IHostSession, IAsyncDisposable
{
    /// <summary>Settings every pgstate session pins, whatever the role or database says (quoting relies on them).</summary>
    public const string PinnedOptions = "-c standard_conforming_strings=on -c search_path=pg_catalog -c client_min_messages=warning";

    private NpgsqlConnection? _connection;
    private SecretResolver? _secrets;
    private NpgsqlDataSource? _dataSource;

    private HostSession(HostManifest host, ProcessRunner processes, Func<string, string?> environment, HostPaths paths, FactBag facts, Action<string> log)
    {
        Host = host;
        Processes = processes;
        Environment = environment;
        Paths = paths;
        Facts = facts;
        Log = log;
    }

    public HostManifest Host { get; private set; }

    public ProcessRunner Processes { get; }

    public Func<string, string?> Environment { get; }

    /// <summary>
    /// Secrets from the environment, else from the credentials the backup jobs read
    /// ($CREDENTIALS_DIRECTORY, else PGSTATE_CREDENTIALS_DIR/HOST): what a nightly drift or check, run
    /// by a timer with no secret in its environment, compares against. Plan and apply still require
    /// every secret in the environment (a secret to write comes from the operator, not from a copy).
    /// </summary>
    public SecretResolver Secrets => _secrets ??= new SecretResolver(Environment,
        Environment("CREDENTIALS_DIRECTORY") is { Length: > 0 } d ? d : Host.Name.Length > 0 ? System.IO.Path.Combine(Paths.CredentialsDirectory, Host.Name) : null);

    public HostPaths Paths { get; private set; }

    public FactBag Facts { get; private set; }

    public Action<string> Log { get; set; }

    public ServerInfo Server { get; private set; } = null!;

    public IReadOnlySet<string> Allowances { get; set; } = new HashSet<string>();

    public NpgsqlConnection Connection => _connection ?? throw new InvalidOperationException("not connected");

    /// <summary>Opens a session for a connection before the manifest is fully checked (see HostWorkflow).</summary>
    public static async Task<HostSession> OpenAsync(ConnectionSpec connection, ProcessRunner processes, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        var document = new ManifestDocument("", new YamlMapping(new SourcePosition("", 1, 1)), new SourcePosition("", 1, 1));
        var placeholder = new HostManifest(document, "", connection, null, new RestartSpec(RestartPolicy.Never, null, null, null, TimeSpan.FromSeconds(60)));
        return await OpenAsync(placeholder, processes, environment, HostPaths.FromEnvironment(environment), new FactBag(), _ => { }, cancellationToken);
    }

    /// <summary>Attaches the checked manifest to a session opened early for the same connection.</summary>
    public void Adopt(HostManifest host, HostPaths paths, FactBag facts)
    {
        if (host.Connection != Host.Connection)
        {
            throw new InvalidOperationException("a session can only adopt a manifest for its own connection");
        }
        Host = host;
        Paths = paths;
        Facts = facts;
        _secrets = null;
    }

    public static async Task<HostSession> OpenAsync(HostManifest host, ProcessRunner processes, Func<string, string?> environment, HostPaths paths, FactBag facts,
        Action<string> log, CancellationToken cancellationToken)
    {
        var session = new HostSession(host, processes, environment, paths, facts, log);
        await session.ConnectAsync(cancellationToken);
        return session;
    }

    private string ConnectionString()
    {
        var c = Host.Connection;
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = c.Host,
            Port = c.Port,
            Username = c.User,
            Database = c.Database,
            Timeout = c.ConnectTimeoutSeconds,
            Pooling = false,
            ApplicationName = "pgstate",
            Options = PinnedOptions,
            // The password comes from the manifest's secret reference, else Npgsql's own PGPASSWORD / .pgpass handling.
            Password = c.Password is { } secret ? Secrets.Resolve(secret) : null,
        };
        return builder.ConnectionString;
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        if (_dataSource is null)
        {
            // The slim builder with type loading off: pgstate reads only built-in types, so this
            // skips the pg_type round trip and most of Npgsql's start-up work.
            var builder = new NpgsqlSlimDataSourceBuilder(ConnectionString());
            builder.EnableArrays();
            builder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
            _dataSource = builder.Build();
        }
        _connection = _dataSource.CreateConnection();
        try
        {
            await _connection.OpenAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await _connection.DisposeAsync();
            _connection = null;
            throw new PgStateException($"cannot connect to {Host.Connection.Describe()} for host '{Host.Name}': {DescribeConnectFailure(e)}", e);
        }
        await using var cmd = new NpgsqlCommand(
            "select current_setting('server_version_num')::int, current_setting('server_version'), " +
            "case when s.priv then current_setting('data_directory') end, r.rolsuper, session_user::text, " +
            "case when s.priv then current_setting('hba_file') end, case when s.priv then current_setting('config_file') end, " +
            "current_setting('port')::int, pg_is_in_recovery(), s.priv, pg_has_role(session_user, 'pg_monitor', 'member'), " +
            "current_setting('standard_conforming_strings') " +
            "from pg_roles r, (select pg_has_role(session_user, 'pg_read_all_settings', 'member') as priv) s where r.rolname = session_user", _connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new PgStateException($"cannot read the server's settings on {Host.Connection.Describe()}");
        }
        if (reader.GetString(11) != "on")
        {
            throw new PgStateException("the session could not pin standard_conforming_strings=on; refusing to send SQL");
        }
        var dataDirectory = reader.IsDBNull(2) ? "" : reader.GetString(2);
        Server = new ServerInfo(reader.GetInt32(0), reader.GetString(1), dataDirectory, reader.GetBoolean(3), reader.GetString(4),
            reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetInt32(7),
            reader.GetBoolean(8), reader.GetBoolean(9), reader.GetBoolean(10))
        {
            SystemIdentifier = ReadSystemIdentifier(dataDirectory),
        };
        // Test-only: plan against a server as if it were another version (how the tests reach PostgreSQL 19's code paths).
        if (Environment("PGSTATE_TEST_SERVER_VERSION_NUM") is { Length: > 0 } pretend && int.TryParse(pretend, NumberStyles.None, CultureInfo.InvariantCulture, out var num))
        {
            Server = Server with { VersionNum = num, Version = $"{num / 10000}.{num % 10000} (PGSTATE_TEST_SERVER_VERSION_NUM; really {Server.Version})" };
        }
    }

    /// <summary>The first 8 bytes of global/pg_control: the cluster's system identifier (little-endian on x86_64 and aarch64).</summary>
    private static string? ReadSystemIdentifier(string dataDirectory)
    {
        if (dataDirectory.Length == 0)
        {
            return null;
        }
        try
        {
            using var stream = new FileStream(Path.Combine(dataDirectory, "global", "pg_control"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> buffer = stackalloc byte[8];
            stream.ReadExactly(buffer);
            return BinaryPrimitives.ReadUInt64LittleEndian(buffer).ToString(CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private string DescribeConnectFailure(Exception e)
    {
        var c = Host.Connection;
        if (c.Host.StartsWith('/'))
        {
            var socket = Path.Combine(c.Host, $".s.PGSQL.{c.Port}");
            if (!Directory.Exists(c.Host))
            {
                return $"the socket directory {c.Host} does not exist (is spec.connection.host right?)";
            }
            if (Posix.FileKind(socket) is null)
            {
                return $"no server is listening on the Unix socket {socket} (is PostgreSQL running, on port {c.Port}?)";
            }
        }
        return Describe(e);
    }

    internal static string Describe(Exception e) => e switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        NpgsqlException { InnerException: { } inner } => inner.Message,
        _ => e.Message,
    };

    public async Task<NpgsqlConnection> OpenDatabaseAsync(string database, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString()) { Database = database };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    /// <summary>Reconnects when a failed statement (or a server restart) left the connection closed.</summary>
    public async Task EnsureConnectedAsync(CancellationToken cancellationToken)
    {
        if (_connection?.State != System.Data.ConnectionState.Open)
        {
            if (_connection is not null)
            {
                await _connection.DisposeAsync();
            }
            await ConnectAsync(cancellationToken);
        }
    }

    public async Task ReloadAsync(CancellationToken cancellationToken)
    {
        await EnsureConnectedAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("select pg_reload_conf()", Connection);
        await cmd.ExecuteScalarAsync(cancellationToken);
    }

    /// <summary>
    /// Restarts the server the way the manifest allows (systemd unit, explicit command, or the
    /// running server's own pg_ctl as the data directory's owner) and waits until it accepts connections again.
    /// </summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        var restart = Host.Restart;
        var dataDirectory = Server.DataDirectory.Length > 0 ? Server.DataDirectory : Host.DataDirectory?.Value
            ?? throw new PgStateException("cannot restart: the server's data_directory is unknown; set spec.dataDirectory");
        var (program, arguments) = restart switch
        {
            { Service: { } service } => ("systemctl", (IReadOnlyList<string>)["restart", "--", service]),
            { Command: { Count: > 0 } command } => (command[0], (IReadOnlyList<string>)[.. command.Skip(1)]),
            _ => DefaultRestartCommand(dataDirectory, restart),
        };
        await Connection.CloseAsync();
        await Processes.RunAsync(program, arguments, restart.Timeout + TimeSpan.FromSeconds(10), cancellationToken: cancellationToken, serverEnvironment: true);
        var deadline = DateTime.UtcNow + restart.Timeout;
        while (true)
        {
            try
            {
                await ConnectAsync(cancellationToken);
                return;
            }
            catch (PgStateException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, cancellationToken);
            }
        }
    }

    private (string, IReadOnlyList<string>) DefaultRestartCommand(string dataDirectory, RestartSpec restart)
    {
        var pgCtl = PostgresPrograms.ServerProgram("pg_ctl", dataDirectory, Server.Major);
        // pg_ctl hands its stdout to the new postmaster; a log file keeps our pipe from staying open.
        var logFile = restart.LogFile ?? Path.Combine(dataDirectory, "pgstate-postmaster.log");
        List<string> args = [pgCtl, "restart", "-D", dataDirectory, "-m", "fast", "-w", "-t", ((int)restart.Timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "-l", logFile];
        if (Posix.IsRoot)
        {
            // pg_ctl refuses to run as root: run it as the owner of the data directory.
            var owner = Posix.Stat(dataDirectory) is { } st ? Posix.UserName(st.Uid) : null;
            if (owner is null || owner == "root")
            {
                throw new PgStateException($"cannot restart: the owner of {dataDirectory} is unknown or root");
            }
            return ("runuser", ["-u", owner, "--", .. args]);
        }
        return (args[0], args[1..]);
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }
}
