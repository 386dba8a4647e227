using System.CommandLine;
using System.Runtime.InteropServices;
using PgState.Cli.Commands;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Planning;
using PgState.Engine.Resources;

namespace PgState.Cli;

/// <summary>Disposes sessions opened early but never used, whatever the command did.</summary>
internal sealed class EarlySessions(HostWorkflow workflow) : IAsyncDisposable
{
    public async ValueTask DisposeAsync() => await workflow.DisposeEarlyAsync();
}

/// <summary>The pgstate command. Runs in-process for tests: new Program(io).RunAsync(args).</summary>
internal sealed class Program(IOContext io)
{
    /// <summary>The composition root: every concern pgstate manages. Adding one means adding a module here.</summary>
    public static IReadOnlyList<IModule> Modules { get; } = ModuleCatalog.All;

    public static async Task<int> Main(string[] args)
    {
        var io = IOContext.FromConsole();
        if (io.Environment("PGSTATE_TIMINGS") == "1")
        {
            Timings.Sink = io.Error.WriteLine;
        }
        Timings.Mark("main");
        Engine.Manifests.ManifestLoader.Preload();
        Engine.Templates.TemplateRenderer.Preload();
        using var cancel = new CancellationTokenSource();
        var signals = 0;
        void OnSignal(PosixSignalContext context)
        {
            // The first SIGINT/SIGTERM asks for a clean stop between changes; a second one ends the process.
            if (Interlocked.Increment(ref signals) == 1)
            {
                context.Cancel = true;
                var signal = context.Signal;
                // Off the signal thread: cancelling runs callbacks (Npgsql, child processes) that must not run inside the handler.
                ThreadPool.QueueUserWorkItem(_ =>
                {
                    io.Error.WriteLine($"pgstate: {signal} received: stopping after the current step (send it again to stop at once)");
                    cancel.Cancel();
                });
            }
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        return await new Program(io).RunAsync(args, cancel.Token);
    }

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        ApplyHooks.Environment = io.Environment;
        ProcessRunner.Environment = io.Environment;
        ApplyHooks.Log = m => io.Error.WriteLine("pgstate: " + m);
        var workflow = new HostWorkflow(io, new PlanEngine(Modules));
        var root = new RootCommand("pgstate — desired state for PostgreSQL backup and recovery plumbing (WAL archiving, pg_hba, SELinux, roles, slots, backups).\n" +
            "Data (plans) goes to stdout, progress to stderr. Exit codes follow terraform plan -detailed-exitcode.")
        {
            new ValidateCommand(io, workflow).Build(),
            new PlanCommand(io, workflow).Build(),
            new ApplyCommand(io, workflow).Build(),
            new ShowCommand(io).Build(),
            new DriftCommand(io, workflow).Build(),
            new CheckCommand(io, workflow).Build(),
            new ImportCommand(io, workflow, Modules).Build(),
        };
        foreach (var command in VerbCommands.Build(io, workflow, Modules.OfType<IVerbProvider>().SelectMany(p => p.Verbs)))
        {
            root.Add(command);
        }
        var parsed = root.Parse(args);
        await using var _ = new EarlySessions(workflow);
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = io.Output, Error = io.Error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null }, cancellationToken);
        }
        catch (PgStateException e)
        {
            io.Error.WriteLine($"pgstate: error: {e.Message}");
            return ExitCodes.Error;
        }
        catch (Npgsql.NpgsqlException e)
        {
            io.Error.WriteLine($"pgstate: error: PostgreSQL: {(e is Npgsql.PostgresException pg ? $"{pg.SqlState}: {pg.MessageText}" : e.Message)}");
            return ExitCodes.Error;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            io.Error.WriteLine("pgstate: interrupted before anything was changed");
            return ExitCodes.Error;
        }
        catch (Exception e)
        {
            // A bug, not a user error: say so plainly, with the type, and keep the exit code contract.
            io.Error.WriteLine($"pgstate: internal error ({e.GetType().Name}): {e.Message}");
            if (io.Environment("PGSTATE_DEBUG") == "1")
            {
                io.Error.WriteLine(e.ToString());
            }
            return ExitCodes.Error;
        }
    }
}
