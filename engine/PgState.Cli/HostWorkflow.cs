using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
using PgState.Engine.Resources;

namespace PgState.Cli;

/// <summary>Connection settings given on the command line win over spec.connection (e.g. through a tunnel).</summary>
public sealed record ConnectionOverride(string? Host, int? Port, string? User);

/// <summary>The steps every command shares: load and check manifests, bind modules, connect, check live.</summary>
internal sealed class HostWorkflow(IOContext io, IReadOnlyList<IModule> modules)
{
    public PlanEngine Engine { get; } = new(modules);

    public sealed record BoundHost(HostManifest Host, IReadOnlyList<IBoundModule> Modules);

    private readonly Dictionary<ConnectionSpec, Task<HostSession?>> _early = [];

    /// <summary>Loads and statically checks manifests; prints every problem; null when any is an error.</summary>
    /// <param name="connectEarly">Start connecting to each host while the schema check runs (plan, apply).</param>
    public IReadOnlyList<BoundHost>? Load(IReadOnlyList<string> files, ConnectionOverride overrides, string diagnosticFormat = "text", bool connectEarly = false)
    {
        Timings.Mark("load start");
        var loader = new ManifestLoader(io.Environment);
        var parsed = loader.Parse(files);
        if (connectEarly && !parsed.Diagnostics.HasErrors)
        {
            foreach (var document in parsed.Documents)
            {
                if (ManifestLoader.PeekConnection(document) is { } peeked)
                {
                    var connection = peeked with { Host = overrides.Host ?? peeked.Host, Port = overrides.Port ?? peeked.Port, User = overrides.User ?? peeked.User };
                    _early.TryAdd(connection, OpenQuietlyAsync(connection));
                }
            }
        }
        var result = ManifestLoader.Check(parsed);
        Timings.Mark("manifests loaded and schema-checked");
        var diagnostics = result.Diagnostics;
        var bound = new List<BoundHost>();
        foreach (var host in result.Hosts)
        {
            var effective = host.WithConnection(overrides.Host, overrides.Port, overrides.User);
            bound.Add(new BoundHost(effective, Engine.Bind(effective, diagnostics)));
        }
        if (bound.Count == 0 && !diagnostics.HasErrors)
        {
            diagnostics.Error("PGS009", "no PostgresHost document found", files.Count > 0 ? new SourcePosition(files[0], 1, 1) : null);
        }
        Timings.Mark("modules bound");
        Print(diagnostics, diagnosticFormat);
        return diagnostics.HasErrors ? null : bound;
    }

    /// <summary>
    /// Connects for a checked host: reuses the session opened early for the same connection
    /// (the connection spec is compared whole), else opens one now and reports the failure.
    /// </summary>
    public async Task<HostSession> ConnectAsync(BoundHost host, CancellationToken cancellationToken)
    {
        io.Error.WriteLine($"pgstate: connecting to {host.Host.Connection.Describe()} for host '{host.Host.Name}'");
        if (_early.Remove(host.Host.Connection, out var early) && await early is { } earlySession)
        {
            earlySession.Adopt(host.Host);
            Timings.Mark("connected (early)");
            return earlySession;
        }
        var session = await HostSession.OpenAsync(host.Host, ProcessRunner.Default, io.Environment, cancellationToken);
        Timings.Mark("connected");
        return session;
    }

    private async Task<HostSession?> OpenQuietlyAsync(ConnectionSpec connection)
    {
        try
        {
            return await Task.Run(() => HostSession.OpenAsync(connection, ProcessRunner.Default, io.Environment, CancellationToken.None));
        }
        catch (Exception e) when (e is PgStateException or Npgsql.NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return null; // ConnectAsync connects again and reports the error properly
        }
    }

    /// <summary>Closes early sessions nobody adopted (an invalid manifest, a host skipped).</summary>
    public async Task DisposeEarlyAsync()
    {
        foreach (var task in _early.Values)
        {
            if (await task is { } session)
            {
                await session.DisposeAsync();
            }
        }
        _early.Clear();
    }

    /// <summary>Checks that need the server; prints problems; false when any is an error.</summary>
    public async Task<bool> ValidateLiveAsync(BoundHost host, IHostSession session, string diagnosticFormat, CancellationToken cancellationToken)
    {
        var diagnostics = new DiagnosticBag();
        await PlanEngine.ValidateLiveAsync(host.Modules, session, diagnostics, cancellationToken);
        Timings.Mark("live checks done");
        Print(diagnostics, diagnosticFormat);
        return !diagnostics.HasErrors;
    }

    public void Print(DiagnosticBag diagnostics, string format)
    {
        foreach (var d in diagnostics.Sorted())
        {
            if (format == "github")
            {
                var level = d.Severity == Severity.Error ? "error" : "warning";
                var where = d.Position is null ? "" : $" file={d.Position.File},line={d.Position.Line},col={d.Position.Column}";
                // GitHub annotations: data on stdout, one line each, % and newlines escaped.
                io.Output.WriteLine($"::{level}{where}::{Escape(d.Message)} [{d.Code}]");
            }
            else
            {
                var where = d.Position is null ? "" : d.Position + ": ";
                var level = d.Severity == Severity.Error ? "" : "warning: ";
                io.Error.WriteLine($"{where}{level}{d.Message} [{d.Code}]");
            }
        }
    }

    private static string Escape(string s) => s.Replace("%", "%25").Replace("\r", "%0D").Replace("\n", "%0A");
}
