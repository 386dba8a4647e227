using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
using PgState.Engine.Resources;

namespace PgState.Cli;

/// <summary>Connection settings given on the command line win over spec.connection (e.g. through a tunnel).</summary>
internal sealed record ConnectionOverride(string? Host, int? Port, string? User)
{
    public static ConnectionOverride None { get; } = new(null, null, null);
}

/// <summary>When secrets must be present: plan and apply need them; validate only reports them unless asked.</summary>
internal enum SecretCheck
{
    Skip,
    Warn,
    Require,
}

/// <summary>The steps every command shares: load and check manifests, bind modules, connect, recover, plan.</summary>
internal sealed class HostWorkflow(IOContext io, PlanEngine engine)
{
    private readonly Dictionary<ConnectionSpec, Task<HostSession?>> _early = [];

    public PlanEngine Engine => engine;

    /// <summary>Loads and statically checks manifests; prints every problem of every stage; null when any is an error.</summary>
    public IReadOnlyList<BoundHost>? Load(IReadOnlyList<string> files, ConnectionOverride overrides, string diagnosticFormat = "text",
        bool connectEarly = false, SecretCheck secrets = SecretCheck.Require)
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
        var paths = HostPaths.FromEnvironment(io.Environment);
        var bound = new List<BoundHost>();
        foreach (var host in result.Hosts)
        {
            var effective = host.WithConnection(overrides.Host, overrides.Port, overrides.User);
            var hostDiagnostics = new DiagnosticBag();
            bound.Add(engine.Bind(effective, paths, hostDiagnostics));
            var references = new List<YamlMapping>();
            SecretReferences(effective.Document.Root, references);
            foreach (var mapping in references)
            {
                if (mapping.String("fromEnv") is { } secretVariable)
                {
                    ProcessRunner.Withhold(secretVariable);
                }
            }
            if (secrets != SecretCheck.Skip)
            {
                CheckSecrets(references, hostDiagnostics, secrets == SecretCheck.Require);
            }
            diagnostics.AddRange(Positioned(hostDiagnostics.Items, host.Document.Position));
        }
        if (bound.Count == 0 && !diagnostics.HasErrors)
        {
            diagnostics.Error(DiagnosticCodes.NoHostDocument, "no PostgresHost document found", files.Count > 0 ? new SourcePosition(files[0], 1, 1) : null);
        }
        Timings.Mark("modules bound");
        Print(diagnostics, diagnosticFormat);
        return diagnostics.HasErrors ? null : bound;
    }

    /// <summary>Every secret a manifest names ({fromEnv}/{fromFile}) must be readable for plan and apply.</summary>
    private void CheckSecrets(IReadOnlyList<YamlMapping> references, DiagnosticBag diagnostics, bool required)
    {
        var resolver = new SecretResolver(io.Environment);
        foreach (var mapping in references)
        {
            {
                var secret = new SecretReference(mapping.String("fromEnv"), mapping.String("fromFile"), mapping.Position);
                if (!resolver.TryResolve(secret, out _, out var error))
                {
                    var message = $"{mapping.Path}: {error}";
                    if (required)
                    {
                        diagnostics.Error(DiagnosticCodes.SecretNotSet, message, mapping.Position);
                    }
                    else
                    {
                        diagnostics.Warning(DiagnosticCodes.SecretNotSet, message + " (plan and apply will need it; validate --require-secrets makes this an error)", mapping.Position);
                    }
                }
            }
        }
    }

    /// <summary>Every problem carries a place (a CI annotation without one lands nowhere): one a module
    /// reported without a position is put at the host's document.</summary>
    private static IEnumerable<Diagnostic> Positioned(IEnumerable<Diagnostic> items, SourcePosition? fallback) =>
        items.Select(d => d.Position is null && fallback is not null ? d with { Position = fallback } : d);

    /// <summary>Every {fromEnv}/{fromFile} mapping in a document, in order (one pass, no iterator per level: manifests have thousands of nodes).</summary>
    private static void SecretReferences(YamlNode node, List<YamlMapping> found)
    {
        switch (node)
        {
            case YamlMapping m:
                if ((m.String("fromEnv") is not null || m.String("fromFile") is not null) && m.Parent is YamlMapping or YamlSequence)
                {
                    found.Add(m);
                }
                foreach (var child in m.Values)
                {
                    SecretReferences(child, found);
                }
                break;
            case YamlSequence s:
                foreach (var child in s.Items)
                {
                    SecretReferences(child, found);
                }
                break;
        }
    }

    /// <summary>Connects for a checked host: reuses the session opened early for the same connection, else opens one now.</summary>
    public async Task<HostSession> ConnectAsync(BoundHost host, CancellationToken cancellationToken)
    {
        io.Error.WriteLine($"pgstate: connecting to {host.Host.Connection.Describe()} for host '{host.Host.Name}'");
        if (_early.Remove(host.Host.Connection, out var early) && await early is { } earlySession)
        {
            earlySession.Adopt(host.Host, host.Paths, host.Facts);
            earlySession.Log = Log;
            Timings.Mark("connected (early)");
            return earlySession;
        }
        var session = await HostSession.OpenAsync(host.Host, ProcessRunner.Default, io.Environment, host.Paths, host.Facts, Log, cancellationToken);
        Timings.Mark("connected");
        return session;
    }

    public void Log(string message) => io.Error.WriteLine("pgstate: " + message);

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
            try
            {
                if (await task is { } session)
                {
                    await session.DisposeAsync();
                }
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or IOException)
            {
                // closing a connection that already broke
            }
        }
        _early.Clear();
    }

    /// <summary>Recovers what an interrupted run left and checks the server itself; false (printed) on an error.</summary>
    public async Task<bool> PrepareAsync(BoundHost host, HostSession session, bool forApply, CancellationToken cancellationToken)
    {
        foreach (var note in await engine.RecoverAsync(host, session, cancellationToken))
        {
            Log("recovered: " + note);
        }
        var diagnostics = new DiagnosticBag();
        PlanEngine.ValidateServer(session, diagnostics, forApply);
        Print(new DiagnosticBag { }.With(diagnostics.Items.Where(d => d.Severity == Severity.Error)), "text", host.Host.Document.Position);
        return !diagnostics.HasErrors;
    }

    /// <summary>Plans one host (live checks included); prints problems; null when any is an error.</summary>
    public async Task<HostPlan?> PlanAsync(BoundHost host, HostSession session, bool forApply, CancellationToken cancellationToken, string diagnosticFormat = "text")
    {
        if (!await PrepareAsync(host, session, forApply, cancellationToken))
        {
            return null;
        }
        var diagnostics = new DiagnosticBag();
        PlanEngine.ValidateServer(session, diagnostics, forApply);
        var plan = await PlanEngine.PlanAsync(host, session, diagnostics, cancellationToken);
        Timings.Mark("planned");
        Print(new DiagnosticBag().With(diagnostics.Items.Where(d => d.Code != DiagnosticCodes.DataDirectoryMismatch)), diagnosticFormat, host.Host.Document.Position);
        return plan;
    }

    public void Print(DiagnosticBag diagnostics, string format, SourcePosition? fallback = null)
    {
        foreach (var d in Positioned(diagnostics.Sorted(), fallback))
        {
            if (format == "github")
            {
                var level = d.Severity == Severity.Error ? "error" : "warning";
                var where = d.Position is null ? "" : $" file={EscapeProperty(d.Position.File)},line={d.Position.Line},col={d.Position.Column}";
                // GitHub annotations: data on stdout, one line each, % and newlines escaped.
                io.Output.WriteLine($"::{level}{where}::{EscapeData(d.Message)} [{d.Code.Id}]");
            }
            else
            {
                // A file name is the operator's, but may hold anything a file name can: shown escaped like other outside text.
                var where = d.Position is null ? "" : PgState.Engine.Rendering.SafeText.Text(d.Position.ToString()) + ": ";
                var level = d.Severity == Severity.Error ? "" : "warning: ";
                io.Error.WriteLine($"{where}{level}{d.Message} [{d.Code.Id}]");
            }
        }
    }

    private static string EscapeData(string s) => s.Replace("%", "%25").Replace("\r", "%0D").Replace("\n", "%0A");

    private static string EscapeProperty(string s) => EscapeData(s).Replace(":", "%3A").Replace(",", "%2C");
}

internal static class DiagnosticBagExtensions
{
    public static DiagnosticBag With(this DiagnosticBag bag, IEnumerable<Diagnostic> items)
    {
        bag.AddRange(items);
        return bag;
    }
}
