using System.CommandLine;
using PgState.Cli.Commands;
using PgState.Engine.Diagnostics;
using PgState.Engine.Resources;
using PgState.Modules.Archiving;
using PgState.Modules.Backups;
using PgState.Modules.Checks;
using PgState.Modules.Hba;
using PgState.Modules.Replication;
using PgState.Modules.Selinux;

namespace PgState.Cli;

/// <summary>Disposes sessions opened early but never used, whatever the command did.</summary>
internal sealed class EarlySessions(HostWorkflow workflow) : IAsyncDisposable
{
    public async ValueTask DisposeAsync() => await workflow.DisposeEarlyAsync();
}

/// <summary>The pgstate command. Runs in-process for tests: new Program(io).RunAsync(args).</summary>
public sealed class Program(IOContext io)
{
    /// <summary>The composition root: every concern pgstate manages. Adding one means adding a module here.</summary>
    public static IReadOnlyList<IModule> Modules { get; } = [new SelinuxModule(), new ArchivingModule(), new ReplicationModule(), new HbaModule(), new BackupsModule(), new ChecksModule()];

    public static Task<int> Main(string[] args)
    {
        Engine.Host.Timings.Mark("main");
        Engine.Manifests.ManifestLoader.Preload();
        Engine.Templates.TemplateRenderer.Preload();
        return new Program(IOContext.FromConsole()).RunAsync(args);
    }

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default)
    {
        var workflow = new HostWorkflow(io, Modules);
        var root = new RootCommand("pgstate — desired state for PostgreSQL backup and recovery plumbing (WAL archiving, settings …).\n" +
            "Data (plans) goes to stdout, progress to stderr. Exit codes follow terraform plan -detailed-exitcode.")
        {
            new ValidateCommand(io, workflow).Build(),
            new PlanCommand(io, workflow).Build(),
            new ApplyCommand(io, workflow).Build(),
            new ShowCommand(io).Build(),
            new DriftCommand(io, workflow).Build(),
            new CheckCommand(io, workflow).Build(),
            new HbaTestCommand(io, workflow).Build(),
            new BackupCommand(io, workflow).Build(),
        };
        var parsed = root.Parse(args);
        await using var _ = new EarlySessions(workflow);
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration { Output = io.Output, Error = io.Error, EnableDefaultExceptionHandler = false }, cancellationToken);
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
        catch (Exception e) when (e is not OperationCanceledException)
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
