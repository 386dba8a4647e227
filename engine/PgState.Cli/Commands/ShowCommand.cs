using System.CommandLine;
using PgState.Engine.Planning;
using PgState.Engine.Rendering;

namespace PgState.Cli.Commands;

/// <summary>pgstate show plan.json…: render saved plans as text, markdown or JSON.</summary>
internal sealed class ShowCommand(IOContext io)
{
    public Command Build()
    {
        var files = new Argument<string[]>("PLAN") { Arity = ArgumentArity.OneOrMore, Description = "Plans written by pgstate plan --out." };
        var format = CommonOptions.Format("text, markdown or json.", "text", "markdown", "json");
        var command = new Command("show", "Render saved plans.") { files, format };
        command.SetAction(result =>
        {
            var plans = result.GetValue(files)!.SelectMany(f => SavedPlanFormat.Read(f).Plans).ToList();
            io.Output.Write(PlanRenderer.Render(plans, Enum.Parse<OutputFormat>(result.GetValue(format)!, ignoreCase: true), io.Colour));
            return ExitCodes.Ok;
        });
        return command;
    }
}
