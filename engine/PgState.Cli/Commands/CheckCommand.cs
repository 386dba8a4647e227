using System.CommandLine;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;
using PgState.Engine.Resources;

namespace PgState.Cli.Commands;

/// <summary>pgstate check: prove that archiving, WAL, slots, replication and backups work. Exit 0 ok, 2 a failure, 1 error.</summary>
internal sealed class CheckCommand(IOContext io, HostWorkflow workflow)
{
    public sealed record Arguments(IReadOnlyList<string> Files, OutputFormat Format, bool Strict, CheckOptions Options, ConnectionOverride Overrides);

    public static Option<bool> ProbeOption() => new("--probe-archive") { Description = "pg_switch_wal() and wait until the segment reaches the archive (writes WAL)." };

    public static Option<string> ProbeTimeoutOption() => new("--probe-timeout") { HelpName = "DURATION", Description = "How long the probe waits (default 30s).", DefaultValueFactory = _ => "30s" };

    /// <summary>Reads --probe-timeout; null (after printing why) when it is not a duration.</summary>
    public static CheckOptions? Options(IOContext io, bool probe, string timeout)
    {
        if (!Durations.TryParse(timeout, out var value, out var error))
        {
            io.Error.WriteLine($"pgstate: error: --probe-timeout: {error}");
            return null;
        }
        return new CheckOptions(probe, value);
    }

    public Command Build()
    {
        var files = CommonOptions.Files();
        var format = CommonOptions.Format("text, markdown or json.", "text", "markdown", "json");
        var strict = new Option<bool>("--strict") { Description = "Count warnings as failures." };
        var probe = ProbeOption();
        var probeTimeout = ProbeTimeoutOption();
        var host = CommonOptions.PgHost();
        var port = CommonOptions.PgPort();
        var user = CommonOptions.PgUser();
        var command = new Command("check", "Health checks: archiver, archive destination, pg_wal, slots, replication, backups, drills, pending restarts, clock. Exit 0 ok, 2 failure, 1 error.")
        {
            files, format, strict, probe, probeTimeout, host, port, user,
        };
        command.SetAction((r, ct) => Options(io, r.GetValue(probe), r.GetValue(probeTimeout)!) is { } options
            ? RunAsync(new Arguments(r.GetValue(files)!, Enum.Parse<OutputFormat>(r.GetValue(format)!, ignoreCase: true), r.GetValue(strict), options,
                new ConnectionOverride(r.GetValue(host), r.GetValue(port), r.GetValue(user))), ct)
            : Task.FromResult(ExitCodes.Error));
        return command;
    }

    public static bool Failed(IEnumerable<CheckResult> checks, bool strict) =>
        checks.Any(c => c.Status == CheckStatus.Fail || (strict && c.Status == CheckStatus.Warn));

    public async Task<int> RunAsync(Arguments args, CancellationToken cancellationToken)
    {
        var hosts = workflow.Load(args.Files, args.Overrides, connectEarly: true, secrets: SecretCheck.Skip);
        if (hosts is null)
        {
            return ExitCodes.Error;
        }
        var results = new List<(string, IReadOnlyList<CheckResult>)>();
        foreach (var host in hosts)
        {
            await using var session = await workflow.ConnectAsync(host, cancellationToken);
            if (!await workflow.PrepareAsync(host, session, forApply: false, cancellationToken))
            {
                return ExitCodes.Error;
            }
            results.Add((host.Host.Name, await PlanEngine.CheckAsync(host, session, args.Options, cancellationToken)));
        }
        io.Output.Write(CheckRenderer.Render(results, args.Format));
        return results.Any(r => Failed(r.Item2, args.Strict)) ? ExitCodes.Changes : ExitCodes.Ok;
    }
}
