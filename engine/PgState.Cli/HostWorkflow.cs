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

    /// <summary>Loads and statically checks manifests; prints every problem; null when any is an error.</summary>
    public IReadOnlyList<BoundHost>? Load(IReadOnlyList<string> files, ConnectionOverride overrides, string diagnosticFormat = "text")
    {
        var result = new ManifestLoader(io.Environment).Load(files);
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
        Print(diagnostics, diagnosticFormat);
        return diagnostics.HasErrors ? null : bound;
    }

    public async Task<HostSession> ConnectAsync(BoundHost host, CancellationToken cancellationToken)
    {
        io.Error.WriteLine($"pgstate: connecting to {host.Host.Connection.Describe()} for host '{host.Host.Name}'");
        return await HostSession.OpenAsync(host.Host, ProcessRunner.Default, io.Environment, cancellationToken);
    }

    /// <summary>Checks that need the server; prints problems; false when any is an error.</summary>
    public async Task<bool> ValidateLiveAsync(BoundHost host, IHostSession session, string diagnosticFormat, CancellationToken cancellationToken)
    {
        var diagnostics = new DiagnosticBag();
        await PlanEngine.ValidateLiveAsync(host.Modules, session, diagnostics, cancellationToken);
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
