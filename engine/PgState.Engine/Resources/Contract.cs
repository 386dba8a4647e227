using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;

namespace PgState.Engine.Resources;

/// <summary>What a module binds with: the host's manifest, where problems go, the shared facts and host paths.</summary>
public sealed record BindContext(HostManifest Host, DiagnosticBag Diagnostics, FactBag Facts, HostPaths Paths)
{
    public YamlMapping Spec => Host.Spec;
}

/// <summary>
/// A concern (archiving, hba, selinux …). It binds its own section of a manifest into typed
/// records; the engine never looks inside a section. Order decides when its changes run.
/// </summary>
public interface IModule
{
    string Name { get; }

    int Order { get; }

    /// <summary>Binds the module's section and checks what needs no server. Null when the manifest does not use it.
    /// The result is an <see cref="IBoundModule"/> (resources), an <see cref="IHealthChecks"/>, or both.</summary>
    IBound? Bind(BindContext context);
}

/// <summary>A module bound to one host's desired state.</summary>
public interface IBound
{
    string Name { get; }
}

/// <summary>Resources: read → diff (pure) → apply one change.</summary>
public interface IBoundModule : IBound
{
    /// <summary>After every module has bound: check facts other modules published (e.g. a stanza both name).</summary>
    void CheckFacts(FactBag facts, DiagnosticBag diagnostics)
    {
    }

    /// <summary>Catalog queries this module needs; the engine runs every module's in one round trip.</summary>
    void DeclareReads(CatalogReads reads, ServerInfo server)
    {
    }

    /// <summary>Reads the live state (files, the declared queries' rows) and returns it, ready to validate and diff.</summary>
    Task<IModuleState> ReadAsync(IHostSession session, CancellationToken cancellationToken);

    /// <summary>Performs one change; returns what is worth reporting (e.g. files relabelled), or null.
    /// Activation (reload, restart) is the engine's job.</summary>
    Task<string?> ApplyAsync(IHostSession session, IPlannedChange change, CancellationToken cancellationToken);

    /// <summary>True when this module's changes need the configuration written before it to be active first
    /// (slots need a raised max_replication_slots).</summary>
    bool NeedsActiveConfiguration => false;

    /// <summary>Runs after this module's changes are written and before the engine activates them; throws
    /// (after putting things back) when they must not be activated. hba asks the server to parse its file here.</summary>
    Task VerifyBeforeActivationAsync(IHostSession session, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>The live state a module read, ready for live validation and the pure diff.</summary>
public interface IModuleState
{
    void ValidateLive(DiagnosticBag diagnostics);

    ModuleDiff Diff();
}

/// <summary>
/// The typed shape every resource module has: Read returns a typed live state; Diff is a pure
/// function of desired (the module's fields) and live, returning typed changes; Apply performs one.
/// </summary>
public abstract class BoundModule<TLive, TPayload> : IBoundModule
    where TPayload : notnull
{
    public abstract string Name { get; }

    public virtual bool NeedsActiveConfiguration => false;

    public virtual void CheckFacts(FactBag facts, DiagnosticBag diagnostics)
    {
    }

    public virtual void DeclareReads(CatalogReads reads, ServerInfo server)
    {
    }

    public virtual Task VerifyBeforeActivationAsync(IHostSession session, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Reads what is there (after the declared catalog queries ran).</summary>
    protected abstract Task<TLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken);

    /// <summary>Checks that need the live server (parameter names, ranges …).</summary>
    protected virtual void ValidateLive(TLive live, DiagnosticBag diagnostics)
    {
    }

    /// <summary>The pure diff: desired (this module's bound fields) against live.</summary>
    public abstract void Diff(TLive live, Diff<TPayload> diff);

    /// <summary>A deterministic text of the live state the diff depends on (hashed into the plan's fingerprint).</summary>
    public abstract string Digest(TLive live);

    protected abstract Task<string?> ApplyAsync(IHostSession session, PlannedChange<TPayload> change, CancellationToken cancellationToken);

    public async Task<IModuleState> ReadAsync(IHostSession session, CancellationToken cancellationToken) =>
        new State(this, await ReadLiveAsync(session, cancellationToken));

    public Task<string?> ApplyAsync(IHostSession session, IPlannedChange change, CancellationToken cancellationToken) =>
        change is PlannedChange<TPayload> typed
            ? ApplyAsync(session, typed, cancellationToken)
            : throw new InvalidOperationException($"module {Name} was handed a change it did not plan ({change.Change.Address})");

    private sealed class State(BoundModule<TLive, TPayload> module, TLive live) : IModuleState
    {
        public void ValidateLive(DiagnosticBag diagnostics) => module.ValidateLive(live, diagnostics);

        public ModuleDiff Diff()
        {
            var diff = new Diff<TPayload>(module.Name);
            module.Diff(live, diff);
            return new ModuleDiff([.. diff.Changes], diff.Pending, diff.Warnings, module.Digest(live));
        }
    }
}

public enum CheckStatus
{
    Ok,
    Warn,
    Fail,
    Skipped,
}

/// <summary>One health check: a stable id, a status, a message a person can act on, the measured value.</summary>
public sealed record CheckResult(string Id, CheckStatus Status, string Message, string? Value = null)
{
    /// <summary>Named numbers for metrics (e.g. rpo_seconds), beside the status.</summary>
    public IReadOnlyDictionary<string, double>? Metrics { get; init; }
}

public sealed record CheckOptions(bool ProbeArchive, TimeSpan ProbeTimeout);

/// <summary>Health checks: does what a module manages really work? Their own contract, not a plan.</summary>
public interface IHealthChecks : IBound
{
    Task<IReadOnlyList<CheckResult>> CheckAsync(IHostSession session, CheckOptions options, CancellationToken cancellationToken);
}

/// <summary>A module that repairs what an interrupted run left (a journal, temporary files) before anything else runs.</summary>
public interface IRecoveringModule
{
    /// <summary>Returns what was recovered, for the log; runs at the start of plan, apply, drift and check.</summary>
    Task<IReadOnlyList<string>> RecoverAsync(IHostSession session, IBound? bound, CancellationToken cancellationToken);
}
