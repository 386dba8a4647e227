using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;

namespace PgState.Engine.Resources;

/// <summary>
/// A concern (archiving, hba, selinux …). It binds its own part of a manifest; the engine never
/// looks inside a section. Order decides when its changes run relative to other modules'.
/// </summary>
public interface IModule
{
    string Name { get; }

    int Order { get; }

    /// <summary>Reads the module's section of the manifest and checks what needs no server.
    /// Returns null when the manifest does not use this module.</summary>
    IBoundModule? Bind(HostManifest host, DiagnosticBag diagnostics);
}

/// <summary>A module bound to one host's desired state: read → diff → apply.</summary>
public interface IBoundModule
{
    string Name { get; }

    /// <summary>Checks that need the live server (parameter names, ranges …).</summary>
    Task ValidateLiveAsync(IHostSession host, DiagnosticBag diagnostics, CancellationToken cancellationToken);

    /// <summary>Reads the live state (once) and diffs it against the desired state.</summary>
    Task<ModuleDiff> PlanAsync(IHostSession host, CancellationToken cancellationToken);

    /// <summary>Performs one change and returns what is worth reporting (e.g. files relabelled), or null.
    /// Activation (reload, restart) is the engine's job.</summary>
    Task<string?> ApplyAsync(IHostSession host, ResourceChange change, CancellationToken cancellationToken);
}
