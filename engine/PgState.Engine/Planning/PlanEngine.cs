using System.Security.Cryptography;
using System.Text;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Engine.Planning;

/// <summary>One host's manifest bound to every module that uses it, with the facts they published.</summary>
internal sealed record BoundHost(HostManifest Host, IReadOnlyList<IBound> Modules, FactBag Facts, HostPaths Paths)
{
    public IEnumerable<IBoundModule> Resources => Modules.OfType<IBoundModule>();

    public VerbHost ForVerb() => new(Host, Modules, Facts, Paths);
}

internal sealed record FailedChange(ResourceChange Change, string Error);

internal sealed record ApplyResult(
    IReadOnlyList<ResourceChange> Applied,
    FailedChange? Failed,
    IReadOnlyList<ResourceChange> NotAttempted,
    IReadOnlyList<string> Activations,
    bool Restarted,
    bool Interrupted,
    HostPlan? After,
    string? AfterError)
{
    public bool Succeeded => Failed is null && !Interrupted && AfterError is null;
}

/// <summary>
/// Orders modules, collects their diffs into a plan, applies a plan (activating once at each point
/// a later module needs it), and checks afterwards that the host agrees with what each module
/// claimed. Knows no concern by name.
/// </summary>
internal sealed class PlanEngine(IReadOnlyList<IModule> modules)
{
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Lowest and highest PostgreSQL major this pgstate is tested against.</summary>
    public const int OldestMajor = SupportedMajors.Oldest;
    public const int NewestMajor = SupportedMajors.Newest;

    public IReadOnlyList<IModule> Modules { get; } = [.. modules.OrderBy(m => m.Order)];

    public BoundHost Bind(HostManifest host, HostPaths paths, DiagnosticBag diagnostics)
    {
        var facts = new FactBag();
        var context = new BindContext(host, diagnostics, facts, paths);
        var bound = Modules.Select(m => m.Bind(context)).OfType<IBound>().ToList();
        foreach (var module in bound.OfType<IBoundModule>())
        {
            module.CheckFacts(facts, diagnostics);
        }
        return new BoundHost(host, bound, facts, paths);
    }

    /// <summary>Repairs what an interrupted run left (hba journal, temporary files); returns what it did.</summary>
    public async Task<IReadOnlyList<string>> RecoverAsync(BoundHost host, IHostSession session, CancellationToken cancellationToken)
    {
        var done = new List<string>();
        foreach (var module in Modules.OfType<IRecoveringModule>())
        {
            var bound = host.Modules.FirstOrDefault(b => b.Name == ((IModule)module).Name);
            done.AddRange(await module.RecoverAsync(session, bound, CancellationToken.None));
        }
        return done;
    }

    /// <summary>Checks about the server itself, before any module: version support, data directory.</summary>
    public static void ValidateServer(IHostSession session, DiagnosticBag diagnostics, bool forApply)
    {
        var server = session.Server;
        if (server.Major < OldestMajor)
        {
            diagnostics.Error(DiagnosticCodes.UnsupportedServer, $"PostgreSQL {server.Version} is older than {OldestMajor}, the oldest version pgstate supports", null);
        }
        if (session.Host.DataDirectory is { } configured && server.DataDirectory.Length > 0
            && !string.Equals(configured.Value.TrimEnd('/'), server.DataDirectory.TrimEnd('/'), StringComparison.Ordinal))
        {
            var message = $"{configured.Value} is not the server's data directory: the server at {session.Host.Connection.Describe()} runs from {server.DataDirectory}";
            if (forApply)
            {
                diagnostics.Error(DiagnosticCodes.DataDirectoryMismatch, message + "; apply refuses to change a server the manifest does not describe", configured.Position);
            }
            else
            {
                diagnostics.Warning(DiagnosticCodes.DataDirectoryMismatch, message, configured.Position);
            }
        }
    }

    /// <summary>Reads every module's live state (all catalog queries in one round trip) and diffs it.
    /// Live validation problems go to <paramref name="diagnostics"/>; the plan is null when any is an error.</summary>
    public static async Task<HostPlan?> PlanAsync(BoundHost host, IHostSession session, DiagnosticBag diagnostics, CancellationToken cancellationToken)
    {
        var resources = host.Resources.ToList();
        var reads = new CatalogReads();
        foreach (var module in resources)
        {
            reads.Owner = module.Name;
            module.DeclareReads(reads, session.Server);
        }
        try
        {
            await reads.ExecuteAsync(session.Connection, cancellationToken);
        }
        catch (CatalogQueryException e)
        {
            var target = session.Server;
            throw new PgStateException(e.Message + (target.Major > NewestMajor
                ? $". PostgreSQL {target.Version} is newer than {NewestMajor}, the newest version this pgstate knows, and its catalogs changed: use a pgstate that supports PostgreSQL {target.Major}"
                : $" (PostgreSQL {target.Version})"), e);
        }
        Timings.Mark($"catalog batch ({reads.Count} queries)");
        var states = new List<(IBoundModule Module, IModuleState State)>();
        foreach (var module in resources)
        {
            states.Add((module, await module.ReadAsync(session, cancellationToken)));
        }
        Timings.Mark("live state read");
        foreach (var (_, state) in states)
        {
            state.ValidateLive(diagnostics);
        }
        if (diagnostics.HasErrors)
        {
            return null;
        }
        var planned = new List<IPlannedChange>();
        var pending = new List<PendingActivation>();
        var warnings = new List<PlanWarning>();
        var digest = new StringBuilder();
        if (session.Server.Major > NewestMajor)
        {
            warnings.Add(new PlanWarning(null, "host", $"PostgreSQL {session.Server.Version} is newer than {NewestMajor}, the newest version this pgstate was tested against: catalogs may have changed; review the plan with care"));
        }
        foreach (var d in diagnostics.Items.Where(d => d.Severity == Severity.Warning && d.Code == DiagnosticCodes.DataDirectoryMismatch))
        {
            warnings.Add(new PlanWarning("spec.dataDirectory", "host", d.Message));
        }
        foreach (var (module, state) in states)
        {
            var diff = state.Diff();
            planned.AddRange(diff.Changes);
            pending.AddRange(diff.Pending);
            warnings.AddRange(diff.Warnings);
            digest.Append(module.Name).Append('=').Append(Hash(diff.LiveDigest)).Append('\n');
        }
        var server = session.Server;
        return new HostPlan(session.Host.Name, session.Host.Connection.Describe(), [.. planned.Select(p => p.Change)], pending, warnings,
            "sha256:" + Hash(digest.ToString()), session.Host.Restart.Policy)
        {
            Planned = planned,
            Server = new PlanTarget(server.SystemIdentifier, server.DataDirectory, server.Port, server.Version),
        };
    }

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>Runs the health checks of every module that has them.</summary>
    public static async Task<IReadOnlyList<CheckResult>> CheckAsync(BoundHost host, IHostSession session, CheckOptions options, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        foreach (var checks in host.Modules.OfType<IHealthChecks>())
        {
            try
            {
                results.AddRange(await checks.CheckAsync(session, options, cancellationToken));
            }
            catch (Exception e) when (e is PgStateException or NpgsqlException or IOException or UnauthorizedAccessException)
            {
                results.Add(new CheckResult($"{checks.Name}", CheckStatus.Fail, $"the {checks.Name} checks could not run: {(e is NpgsqlException ? HostSession.Describe(e) : e.Message)}"));
            }
        }
        return results;
    }

    /// <summary>
    /// Applies the plan's changes module by module and stops at the first failure. Activation is
    /// the engine's: before a module that needs the configuration active, and once at the end, it
    /// reloads (or restarts, when a restart-only value changed and the policy allows). A module may
    /// verify its written changes before they are activated (hba asks the server to parse its file).
    /// Each change runs to its end; a cancellation (SIGINT, SIGTERM) is honoured between changes.
    /// Afterwards the host is re-read to confirm every applied change converged.
    /// </summary>
    public static async Task<ApplyResult> ApplyAsync(BoundHost host, HostSession session, HostPlan plan, Action<string> log, CancellationToken cancellationToken)
    {
        var byName = host.Resources.ToDictionary(m => m.Name, StringComparer.Ordinal);
        var applied = new List<ResourceChange>();
        var activations = new List<string>();
        FailedChange? failed = null;
        var interrupted = false;
        var restarted = false;
        var attempted = new HashSet<ResourceChange>(ReferenceEqualityComparer.Instance);
        var needReload = false;
        var needRestart = false;
        // The modules whose changes the next reload or restart activates: named in what apply says it did.
        var needers = new List<string>();
        var restarters = new List<string>();

        async Task ActivateAsync(string why)
        {
            if (needRestart && session.Host.Restart.Policy == RestartPolicy.Allowed)
            {
                log($"restarting PostgreSQL {why} (restart.policy: allowed)…");
                await session.RestartAsync(CancellationToken.None);
                restarted = true;
                activations.Add($"restarted {why}");
                log("PostgreSQL is accepting connections again");
            }
            else if (needReload || needRestart)
            {
                await session.ReloadAsync(CancellationToken.None);
                activations.Add($"reloaded {why}");
                log($"configuration reloaded (pg_reload_conf) {why}");
            }
            needReload = false;
            needRestart = false;
            needers.Clear();
            restarters.Clear();
        }

        try
        {
            foreach (var module in host.Resources)
            {
                var changes = plan.Planned.Where(c => c.Change.Module == module.Name).ToList();
                var pending = plan.Pending.Where(p => p.Module == module.Name).ToList();
                if (changes.Count == 0 && pending.Count == 0)
                {
                    continue;
                }
                if (cancellationToken.IsCancellationRequested)
                {
                    interrupted = true;
                    break;
                }
                if (module.NeedsActiveConfiguration && (needReload || needRestart))
                {
                    await ActivateAsync($"before {module.Name}");
                }
                var moduleApplied = new List<ResourceChange>();
                foreach (var planned in changes)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        interrupted = true;
                        break;
                    }
                    var change = planned.Change;
                    attempted.Add(change);
                    try
                    {
                        log($"{change.Address}: {change.Action.Word()}…");
                        ApplyHooks.Reached($"before {change.Address}");
                        // Each change runs to its end: a half-done change is worse than a late stop.
                        if (await byName[change.Module].ApplyAsync(session, planned, CancellationToken.None) is { } detail)
                        {
                            log($"{change.Address}: {detail}");
                        }
                        moduleApplied.Add(change);
                        ApplyHooks.Reached($"after {change.Address}");
                    }
                    catch (Exception e) when (IsApplyFailure(e))
                    {
                        failed = new FailedChange(change, Describe(e));
                        break;
                    }
                }
                if (moduleApplied.Count > 0)
                {
                    try
                    {
                        ApplyHooks.Reached($"verify {module.Name}");
                        await module.VerifyBeforeActivationAsync(session, CancellationToken.None);
                    }
                    catch (Exception e) when (IsApplyFailure(e))
                    {
                        // The module put its files back: none of its changes are applied.
                        failed ??= new FailedChange(moduleApplied[^1], Describe(e));
                        moduleApplied.Clear();
                    }
                }
                applied.AddRange(moduleApplied);
                needReload |= moduleApplied.Any(c => c.Activation == Activation.Reload) || pending.Any(p => p.Needs == Activation.Reload);
                var restartNeeded = moduleApplied.Any(c => c.Activation == Activation.Restart) || pending.Any(p => p.Needs == Activation.Restart);
                if (restartNeeded || moduleApplied.Any(c => c.Activation == Activation.Reload) || pending.Any(p => p.Needs == Activation.Reload))
                {
                    needers.Add(module.Name);
                }
                if (restartNeeded)
                {
                    restarters.Add(module.Name);
                }
                needRestart |= restartNeeded;
                if (failed is not null || interrupted)
                {
                    break;
                }
            }
            // An interruption that came during the last change still stops before activation (a restart above all).
            interrupted |= cancellationToken.IsCancellationRequested;
            if (!interrupted && (needReload || needRestart))
            {
                // A restart is said to be for the modules that need one; a reload for every module with something to activate.
                await ActivateAsync($"after {string.Join(", ", needRestart && session.Host.Restart.Policy == RestartPolicy.Allowed ? restarters : needers)}");
            }
        }
        catch (Exception e) when (IsApplyFailure(e))
        {
            // Activation failed (the server went away, a restart command failed): say so, keep the report.
            failed ??= new FailedChange(new ResourceChange("(activation)", "host", ChangeAction.Update, null, null, Activation.Reload), Describe(e));
        }
        var notAttempted = plan.Changes.Where(c => !attempted.Contains(c)).ToList();

        HostPlan? after = null;
        string? afterError = null;
        if (!interrupted)
        {
            try
            {
                await session.EnsureConnectedAsync(CancellationToken.None);
                after = await SettleAsync(host, session, applied, CancellationToken.None);
            }
            catch (Exception e) when (IsApplyFailure(e))
            {
                afterError = $"cannot re-read the host to confirm the changes: {Describe(e)}";
            }
        }
        if (after is not null && failed is null)
        {
            var unconfirmed = applied.Where(a => after.Changes.Any(c => c.Address == a.Address)).ToList();
            if (unconfirmed.Count > 0)
            {
                var first = unconfirmed[0];
                failed = new FailedChange(first, $"the module reported {first.Address} as applied, but the host still differs after re-reading it");
                applied.RemoveAll(unconfirmed.Contains);
            }
        }
        return new ApplyResult(applied, failed, notAttempted, activations, restarted, interrupted, after, afterError);
    }

    private static bool IsApplyFailure(Exception e) =>
        e is PgStateException or NpgsqlException or IOException or UnauthorizedAccessException or TimeoutException
            or System.Net.Sockets.SocketException or InvalidOperationException { Source: "Npgsql" };

    private static string Describe(Exception e) => e is NpgsqlException ? HostSession.Describe(e) : e.Message;

    /// <summary>A reload reaches backends asynchronously: re-read until applied changes are gone or time runs out.</summary>
    private static async Task<HostPlan> SettleAsync(BoundHost host, IHostSession session, IReadOnlyList<ResourceChange> applied, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + SettleTimeout;
        var delay = 20;
        while (true)
        {
            var diagnostics = new DiagnosticBag();
            var after = await PlanAsync(host, session, diagnostics, cancellationToken)
                ?? throw new PgStateException("re-reading the host after apply failed: " + string.Join("; ", diagnostics.Items.Select(d => d.Message)));
            var settled = !applied.Any(a => after.Changes.Any(c => c.Address == a.Address))
                          && !after.Pending.Any(p => p.Needs == Activation.Reload);
            if (settled || DateTime.UtcNow > deadline)
            {
                return after;
            }
            await Task.Delay(delay, cancellationToken);
            delay = Math.Min(delay * 2, 500);
        }
    }
}

/// <summary>
/// A test-only pause at named points of an apply (PGSTATE_TEST_PAUSE_AT=point;…), so the kill tests
/// can send SIGKILL or SIGTERM at a known instruction. It prints "pgstate: test pause at POINT" on
/// stderr and sleeps PGSTATE_TEST_PAUSE_MS (default 3000). It changes nothing else.
/// </summary>
public static class ApplyHooks
{
    public static Func<string, string?> Environment { get; set; } = _ => null;

    public static Action<string> Log { get; set; } = _ => { };

    public static void Reached(string point)
    {
        if (Environment("PGSTATE_TEST_PAUSE_AT") is not { Length: > 0 } points)
        {
            return;
        }
        if (points.Split(';').Any(p => p.Length > 0 && point.StartsWith(p, StringComparison.Ordinal)))
        {
            Log($"test pause at {point}");
            var ms = int.TryParse(Environment("PGSTATE_TEST_PAUSE_MS"), out var v) ? v : 3000;
            Thread.Sleep(ms);
        }
    }
}
