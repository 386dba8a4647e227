using System.Security.Cryptography;
using System.Text;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Engine.Planning;

public sealed record FailedChange(ResourceChange Change, string Error);

public sealed record ApplyResult(
    IReadOnlyList<ResourceChange> Applied,
    FailedChange? Failed,
    IReadOnlyList<ResourceChange> NotAttempted,
    bool Reloaded,
    bool Restarted,
    HostPlan After)
{
    public bool Succeeded => Failed is null;
}

/// <summary>
/// Orders modules, collects their diffs into a plan, applies a plan, and checks afterwards that
/// the host agrees with what each module claimed. Knows no concern by name.
/// </summary>
public sealed class PlanEngine(IReadOnlyList<IModule> modules)
{
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(10);

    public IReadOnlyList<IBoundModule> Bind(HostManifest host, DiagnosticBag diagnostics) =>
        [.. modules.OrderBy(m => m.Order).Select(m => m.Bind(host, diagnostics)).OfType<IBoundModule>()];

    public static async Task ValidateLiveAsync(IReadOnlyList<IBoundModule> bound, IHostSession session, DiagnosticBag diagnostics, CancellationToken cancellationToken)
    {
        foreach (var module in bound)
        {
            await module.ValidateLiveAsync(session, diagnostics, cancellationToken);
        }
    }

    /// <summary>Runs the health checks of every module that has them.</summary>
    public static async Task<IReadOnlyList<CheckResult>> CheckAsync(IReadOnlyList<IBoundModule> bound, IHostSession session, CheckOptions options, CancellationToken cancellationToken)
    {
        var results = new List<CheckResult>();
        foreach (var module in bound.OfType<ICheckedModule>())
        {
            results.AddRange(await module.CheckAsync(session, options, cancellationToken));
        }
        return results;
    }

    public static async Task<HostPlan> PlanAsync(IReadOnlyList<IBoundModule> bound, IHostSession session, CancellationToken cancellationToken)
    {
        var changes = new List<ResourceChange>();
        var pending = new List<PendingActivation>();
        var warnings = new List<PlanWarning>();
        var digest = new StringBuilder();
        if (session.Host.DataDirectory is { } configured && session.Server.DataDirectory.Length > 0
            && !string.Equals(configured.TrimEnd('/'), session.Server.DataDirectory.TrimEnd('/'), StringComparison.Ordinal))
        {
            warnings.Add(new PlanWarning("spec.dataDirectory", "host",
                $"{configured} is not the server's data directory: the server's data_directory is {session.Server.DataDirectory}"));
        }
        foreach (var module in bound)
        {
            var diff = await module.PlanAsync(session, cancellationToken);
            changes.AddRange(diff.Changes);
            pending.AddRange(diff.Pending);
            warnings.AddRange(diff.Warnings);
            digest.Append(module.Name).Append('=').Append(diff.LiveDigest).Append('\n');
        }
        var fingerprint = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(digest.ToString())));
        return new HostPlan(session.Host.Name, session.Host.Connection.Describe(), changes, pending, warnings, fingerprint, session.Host.Restart.Policy);
    }

    /// <summary>
    /// Applies the plan's changes in order and stops at the first failure; then reloads or
    /// restarts as the changes need and the restart policy allows; then re-reads the host and
    /// confirms every applied change converged (or is pending a restart the policy forbids).
    /// </summary>
    public static async Task<ApplyResult> ApplyAsync(
        IReadOnlyList<IBoundModule> bound,
        HostSession session,
        HostPlan plan,
        Action<string> log,
        CancellationToken cancellationToken)
    {
        var byName = bound.ToDictionary(m => m.Name, StringComparer.Ordinal);
        var applied = new List<ResourceChange>();
        FailedChange? failed = null;
        var reloaded = false;
        var restarted = false;
        var attempted = new HashSet<ResourceChange>(ReferenceEqualityComparer.Instance);
        // Module by module, in module order, each followed by the activation its changes need: a
        // restart-only setting (max_replication_slots, archive_mode) is live before a later module
        // (slots, archiving to a new directory) depends on it.
        foreach (var module in bound.Select(m => m.Name))
        {
            var moduleApplied = new List<ResourceChange>();
            foreach (var change in plan.Changes.Where(c => c.Module == module))
            {
                attempted.Add(change);
                try
                {
                    log($"{change.Address}: {change.Action.Word()}…");
                    if (await byName[change.Module].ApplyAsync(session, change, cancellationToken) is { } detail)
                    {
                        log($"{change.Address}: {detail}");
                    }
                    moduleApplied.Add(change);
                }
                catch (Exception e) when (e is PgStateException or Npgsql.NpgsqlException or IOException or UnauthorizedAccessException)
                {
                    failed = new FailedChange(change, e is Npgsql.NpgsqlException ? HostSession.Describe(e) : e.Message);
                    await session.EnsureConnectedAsync(cancellationToken);
                    break;
                }
            }
            applied.AddRange(moduleApplied);
            var pending = plan.Pending.Where(p => p.Module == module).ToList();
            if (moduleApplied.Count > 0 || pending.Any(p => p.Needs == Activation.Reload))
            {
                await session.ReloadAsync(cancellationToken);
                reloaded = true;
                log($"configuration reloaded (pg_reload_conf) after {module}");
            }
            var needRestart = moduleApplied.Any(c => c.Activation == Activation.Restart) || pending.Any(p => p.Needs == Activation.Restart);
            if (needRestart && session.Host.Restart.Policy == RestartPolicy.Allowed)
            {
                log($"restarting PostgreSQL for {module} (restart.policy: allowed)…");
                await session.RestartAsync(cancellationToken);
                restarted = true;
                log("PostgreSQL is accepting connections again");
            }
            if (failed is not null)
            {
                break;
            }
        }
        var notAttempted = plan.Changes.Where(c => !attempted.Contains(c)).ToList();

        var after = await SettleAsync(bound, session, applied, cancellationToken);
        var unconfirmed = applied.Where(a => after.Changes.Any(c => c.Address == a.Address)).ToList();
        if (unconfirmed.Count > 0 && failed is null)
        {
            var first = unconfirmed[0];
            failed = new FailedChange(first,
                $"the module reported {first.Address} as applied, but the host still differs after re-reading it");
            applied.RemoveAll(unconfirmed.Contains);
        }
        return new ApplyResult(applied, failed, notAttempted, reloaded, restarted, after);
    }

    /// <summary>A reload reaches backends asynchronously: re-read until applied changes are gone or time runs out.</summary>
    private static async Task<HostPlan> SettleAsync(IReadOnlyList<IBoundModule> bound, IHostSession session, IReadOnlyList<ResourceChange> applied, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + SettleTimeout;
        var delay = 20;
        while (true)
        {
            var after = await PlanAsync(bound, session, cancellationToken);
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
